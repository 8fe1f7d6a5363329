"""The revision map read from one listing of the versions folder is the map Alembic builds.

A run builds it (migration_runner/steps/revision_map.py) instead of Alembic's own walk, which
resolves each shim's path: the same files, the same ids, paths and modules; a layout it
does not read keeps Alembic's own map.
"""

import os
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from migration_runner.steps.revision_map import read_from_listing
from migration_runner.steps.shims import shims_read_as_data
from support.database import current_version, query
from support.processes import run_python
from support.project import HEAD, REVISIONS, ROOT, add_revision, ups

UP = "-- add_test_only_note (up): test-only revision.\nALTER TABLE users ADD COLUMN note text;\n"
DOWN = "-- add_test_only_note (down): test-only revision.\nALTER TABLE users DROP COLUMN note;\n"


def scripts(tree: Path, listed: bool) -> tuple[ScriptDirectory, dict]:
    """The tree's script directory, its map read from the listing or Alembic's own, and
    what each revision in it is: id to (down revision, path, docstring, upgrade's module)."""
    script = ScriptDirectory.from_config(Config(str(tree / "alembic.ini")))
    alembics = script.revision_map
    with shims_read_as_data():  # as env.py loads them
        if listed:
            read_from_listing(script)
            assert script.revision_map is not alembics
        revisions = {
            rev.revision: (
                rev.down_revision,
                os.fspath(rev.path),
                rev.module.__doc__,
                rev.module.upgrade.__module__,
            )
            for rev in script.walk_revisions()
        }
    return script, revisions


def test_the_map_read_from_the_listing_is_the_one_alembic_builds(tree_copy: Path, tmp_path: Path):
    versions = tree_copy / "alembic" / "versions"
    plain = add_revision(tree_copy, "add_test_only_note", UP, DOWN)
    edited = add_revision(tree_copy, "edited_by_hand", UP.replace("note", "memo"), DOWN)
    (hand_written,) = versions.glob(f"{edited}_*.py")  # code of its own: Alembic imports it
    hand_written.write_text(hand_written.read_text() + "\nNOTE = 'kept'\n")
    linked = add_revision(tree_copy, "kept_elsewhere", UP.replace("note", "tag"), DOWN)
    (shim,) = versions.glob(f"{linked}_*.py")  # a link to a shim kept in another folder
    elsewhere = tmp_path / "elsewhere" / shim.name
    elsewhere.parent.mkdir()
    shim.rename(elsewhere)
    shim.symlink_to(elsewhere)

    alembics, expected = scripts(tree_copy, listed=False)
    listed, found = scripts(tree_copy, listed=True)

    assert found == expected
    assert list(found) == list(expected)  # walked in the same order, head first
    assert list(found)[:3] == [linked, edited, plain]
    assert found[linked][1] == str(elsewhere.resolve())  # resolved, as Alembic resolves it
    assert listed.get_revision(edited).module.NOTE == "kept"
    assert listed.get_current_head() == alembics.get_current_head() == linked


def test_two_names_for_one_shim_keep_alembics_own_map(tree_copy: Path):
    versions = tree_copy / "alembic" / "versions"
    (first,) = versions.glob(f"{REVISIONS[0]}_*.py")
    (versions / "000_same_file.py").symlink_to(first)
    script = ScriptDirectory.from_config(Config(str(tree_copy / "alembic.ini")))
    alembics = script.revision_map

    read_from_listing(script)

    assert script.revision_map is alembics  # Alembic loads it once and warns


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("sourceless", "true"),
        ("recursive_version_locations", "true"),
        ("version_locations", "%(here)s/alembic/versions %(here)s/more_versions"),
    ],
)
def test_a_layout_other_than_one_plain_folder_keeps_alembics_own_map(tree_copy, option, value):
    (tree_copy / "more_versions").mkdir()
    config = Config(str(tree_copy / "alembic.ini"))
    config.set_main_option(option, value)
    script = ScriptDirectory.from_config(config)
    alembics = script.revision_map

    read_from_listing(script)

    assert script.revision_map is alembics


# Counts the calls of Alembic's own walk of the versions folder during an upgrade from base.
COUNTED_UPGRADE = """
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

walks = []
alembics_walk = ScriptDirectory._load_revisions
def counted(self):
    walks.append(1)
    return alembics_walk(self)
ScriptDirectory._load_revisions = counted
command.upgrade(Config({ini!r}), "head")
print("alembic walks:", len(walks))
"""


def test_a_run_from_base_never_takes_alembics_walk_of_the_folder(database_url: str):
    script = COUNTED_UPGRADE.format(ini=str(ROOT / "alembic.ini"))

    result = run_python(script, url=database_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "alembic walks: 0" in result.stdout
    assert current_version(database_url) == HEAD
    assert query(
        database_url, "SELECT revision, direction FROM migration_history ORDER BY id"
    ) == ups(*REVISIONS)
