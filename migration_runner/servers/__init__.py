"""Local PostgreSQL servers: the development server and the Vercel Postgres stand-in."""
