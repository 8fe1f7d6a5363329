"""Shims read as the data they are, not compiled: what a run from base pays per revision.

Alembic imports every file in alembic/versions to build its revision map. A deploy's
checkout has no compiled bytecode, so a run from base compiles and executes each
shim: at 300 revisions about a fifth of a second, more than the revisions' SQL
takes a fast server to run. A shim written by `alembic revision` (script.py.mako:
a docstring, the import of run_up and run_down, the four ids as plain literals, and
two functions that call them with __file__) holds nothing but data, so the module it
would make is built directly from its text.

Only a shim that matches that template character for character takes this path,
docstrings aside; any other file (an edited body, an extra import, a computed id,
a branch label) is imported by Alembic as usual. The module built here tells
run_up that its file is the whole revision, so the file may wait for the
revision's commit string (steps/transaction.py); a shim with code of its own
runs its file alone, in the order its code says.
"""

import os
import re
import types
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from alembic import util

# The shim as script.py.mako renders it. Docstrings are free text without quotes or
# backslashes (so the text is the value), ids plain literals without escapes.
_DOC = r'"""(?P<{}>[^"\\]*)"""'
_ID = r"""(?:'(?P<{0}1>[\w.-]+)'|"(?P<{0}2>[\w.-]+)")"""


@cache
def template() -> re.Pattern:
    """The pattern, compiled on first use rather than on import."""
    return re.compile(
        _DOC.format("doc") + "\n\n"
        "from migration_runner.steps.revision import run_down, run_up\n\n"
        "revision = " + _ID.format("rev") + "\n"
        "down_revision = (?:None|" + _ID.format("down") + ")\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade\\(\\) -> None:\n"
        "    " + _DOC.format("up_doc") + "\n"
        "    run_up\\(__file__\\)\n\n\n"
        "def downgrade\\(\\) -> None:\n"
        "    " + _DOC.format("down_doc") + "\n"
        "    run_down\\(__file__\\)\n"
    )


def module_from_text(module_id: str, path: str, text: str) -> types.ModuleType | None:
    """The module the shim at path would make when imported; None unless it is the template's."""
    shape = template().fullmatch(text)
    if shape is None:
        return None
    module = types.ModuleType(module_id, shape["doc"])
    module.__file__ = path

    def upgrade() -> None:
        from migration_runner.steps.revision import run_up

        run_up(path, whole_revision=True)  # nothing else runs before its commit string

    def downgrade() -> None:
        from migration_runner.steps.revision import run_down

        run_down(path, whole_revision=True)

    upgrade.__doc__, downgrade.__doc__ = shape["up_doc"], shape["down_doc"]
    upgrade.__module__ = downgrade.__module__ = module_id
    module.upgrade, module.downgrade = upgrade, downgrade
    module.revision = shape["rev1"] or shape["rev2"]
    module.down_revision = shape["down1"] or shape["down2"]
    module.branch_labels = module.depends_on = None
    return module


@contextmanager
def shims_read_as_data() -> Iterator[None]:
    """While the block runs, Alembic builds template shims' modules from their text."""
    load = util.load_python_file

    def load_python_file(dir_, filename):
        path = os.path.join(os.fspath(dir_), os.path.basename(os.fspath(filename)))
        if path.endswith(".py"):
            try:
                with open(path, encoding="utf-8") as shim:
                    text = shim.read()
            except (OSError, UnicodeDecodeError):
                text = ""  # Alembic's own loading says what is wrong
            module = module_from_text(re.sub(r"\W", "_", os.path.basename(path)), path, text)
            if module is not None:
                return module
        return load(dir_, filename)

    util.load_python_file = load_python_file
    try:
        yield
    finally:
        util.load_python_file = load
