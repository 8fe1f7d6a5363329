"""sqlfluff runs untraced under make test's coverage (.coveragerc).

Coverage traces every line a measured process runs, ours or not. Autogenerate fixes and
lints each draft with sqlfluff in its own process, and tests lint what it wrote: sqlfluff
is given text and a configuration and calls none of our code (test_untraced_linter.py), so
tracing it measures nothing and only slows it down: `sqlfluff lint` of one file took 3.5 s
traced against 2.0 s, and make test's pytest pair took 412 s with sqlfluff traced, 348 s
without (2026-12-01, one run each). While one of its entry points runs, this thread's trace
function (coverage's tracer, when it measures) is set aside; it is put back when the call
returns.

install() runs when conftest.py is imported, before any child is forked: the children of
support/forked_alembic.py inherit the wrapped entry points. A fresh interpreter does not.
"""

import functools
import sys

from sqlfluff.core import Linter

# Every lint and fix goes through one of these: sqlfluff.lint and sqlfluff.fix call
# lint_string_wrapped; tests and sqlfluff's command line call lint_paths.
ENTRY_POINTS = ("lint_string_wrapped", "lint_paths")


def untraced(function):
    """function, run with this thread's trace function set aside."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        tracer = sys.gettrace()
        if tracer is None:
            return function(*args, **kwargs)
        sys.settrace(None)
        try:
            return function(*args, **kwargs)
        finally:
            sys.settrace(tracer)

    return call


def install() -> None:
    """Wrap Linter's entry points, once."""
    for name in ENTRY_POINTS:
        function = getattr(Linter, name)
        if not hasattr(function, "__wrapped__"):
            setattr(Linter, name, untraced(function))
