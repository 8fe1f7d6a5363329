"""The steps of a run, in order: resolve the URL, connect, lock, check, migrate, record."""
