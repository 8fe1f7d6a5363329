"""Alembic's revision map, built from the versions folder's listing without resolving each path.

To build its map, Alembic walks the versions folder and, for each file, resolves its path
(a stat of every folder above it), builds `Path` objects and matches names. At 300
revisions its map took 24 to 27 ms (in process, 2026-12-02), paid by every run from base
before its first revision can start; this one 9 to 15 ms, most of it reading the files
and building their modules.

In the plain layout (one versions folder, not recursive, not sourceless) this map lists the
folder once, takes the same files in the same order, loads each with the loader Alembic uses
(`alembic.util.load_python_file`, which builds a template shim from its text:
steps/shims.py), and hands the same `Script` objects to Alembic's own `RevisionMap`, which
does the rest: heads, branches, cycles, errors. A symbolic link is resolved as Alembic
resolves it. Any other layout, or two names for one file, keeps Alembic's own map.
"""

import os
import re
from collections.abc import Iterator

from alembic import util
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionMap
from alembic.util import CommandError

# Alembic's own rules: which files in a versions folder are revisions, and the legacy id
# taken from the name of a file that sets no `revision`.
REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
LEGACY_ID = re.compile(r"([a-f0-9]+)\.py$")


def shim_files(script: ScriptDirectory) -> list[str] | None:
    """The revision files of the versions folder, by name, as Alembic resolves them;
    None when the layout is not the plain one this module reads."""
    if script.sourceless or script.recursive_version_locations:
        return None
    try:
        folder = os.path.realpath(script.versions)
    except CommandError:  # several version locations
        return None
    if not os.path.isdir(folder):
        return None
    with os.scandir(folder) as entries:  # file types come with the listing: no stat per shim
        found = sorted(
            (entry.name, os.path.realpath(entry.path) if entry.is_symlink() else entry.path)
            for entry in entries
            if REVISION_FILE.match(entry.name) and entry.is_file()
        )
    paths = [path for _, path in found]
    # Two names for one file: Alembic loads it once and warns, so its own map is kept.
    return paths if len(set(paths)) == len(paths) else None


def _scripts(paths: list[str]) -> Iterator[Script]:
    """A Script per file, as Alembic's loading makes it."""
    for path in paths:
        folder, name = os.path.split(path)
        module = util.load_python_file(folder, name)
        revision = getattr(module, "revision", None)
        if revision is None:  # written before Alembic 0.2: the id is the file's name
            legacy = LEGACY_ID.match(name)
            if legacy is None:
                raise CommandError(
                    f"Could not determine revision id from filename {name}. Be sure the "
                    "'revision' variable is declared inside the script."
                )
            revision = legacy.group(1)
        yield Script(module, revision, path)


def read_from_listing(script: ScriptDirectory) -> None:
    """Give script a revision map built from one listing of its folder, when its layout is
    the plain one; built on first use, as Alembic's is, so a run that never asks (a deploy
    at head: steps/at_head.py) loads no shim."""
    paths = shim_files(script)
    if paths is not None:
        script.revision_map = RevisionMap(lambda: _scripts(paths))
