"""The README quotes the committed benchmark run (bench/results.md), figure for figure."""

import re

from support.project import ROOT

RESULTS = (ROOT / "bench" / "results.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _table_after(heading: str) -> dict[str, list[str]]:
    """Rows of the first table after a heading: first cell -> the other cells."""
    section = RESULTS[RESULTS.index(heading) :]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| tool", "| ---", "| goal")):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
        elif rows and not line.startswith("|"):
            break
    return rows


def _at_300(heading: str, tool: str) -> str:
    """The ratio in the N=300 column of a tool's row, as '1.23x'."""
    header = RESULTS[RESULTS.index(heading) :].split("| tool |", 1)[1].split("\n", 1)[0]
    column = [cell.strip() for cell in header.strip(" |").split("|")].index("N=300")
    return re.search(r"\(([\d.]+x)\)", _table_after(heading)[tool][column]).group(1)


def test_readme_quotes_the_committed_run():
    marginal = "### Marginal cost"
    noop = "### 2. No-op at head"
    date = re.search(r"Produced by `make bench` on (\d{4}-\d\d-\d\d)", RESULTS).group(1)
    quoted = {
        "date": date,
        "ours": _at_300(marginal, "our runner"),
        "plain": _at_300(marginal, "plain Alembic shims"),
        "dbmate": _at_300(marginal, "dbmate"),
        "no-op": _at_300(noop, "our runner"),
        "over a network": _table_after("### 6. Base to head over a network")["our runner"][-1],
    }
    paragraph = README[README.index("**How fast**") :].split("\n\n", 1)[0]
    for name, figure in quoted.items():
        assert figure in paragraph, f"README's benchmark paragraph does not say {name} {figure}"


def test_readme_says_whether_the_run_met_the_speed_goal():
    goals = _table_after("### Goals")
    met = [cells[-1] == "yes" for goal, cells in goals.items() if goal.startswith("N=300 marginal")]
    paragraph = README[README.index("**How fast**") :].split("\n\n", 1)[0]
    assert met, "bench/results.md has no marginal-cost goal"
    assert ("is missed" if not all(met) else "is met") in paragraph
