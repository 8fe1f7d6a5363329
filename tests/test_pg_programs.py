"""A client program's version is asked once per file as it is on disk, and again once replaced."""

import os
import stat

from migration_runner.pg_programs import client_version, major_of


def _program(path, version: str, calls) -> None:
    path.write_text(f'#!/bin/sh\necho x >> "{calls}"\necho "pg_dump (PostgreSQL) {version}"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_programs_version_is_asked_once_until_the_file_changes(tmp_path):
    program, calls = tmp_path / "pg_dump", tmp_path / "calls"
    _program(program, "15.18", calls)

    assert [client_version(program) for _ in range(3)] == ["15.18"] * 3
    assert calls.read_text().count("x") == 1

    # An upgrade in place: same path, new file.
    replacement = tmp_path / "pg_dump.new"
    _program(replacement, "18.1", calls)
    os.replace(replacement, program)
    assert major_of(client_version(program)) == 18
    assert calls.read_text().count("x") == 2
