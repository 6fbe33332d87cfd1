"""`p` on a run that cannot pause says why instead of doing nothing silently."""

from ferry.core.runs import RunState
from ferry.tui.screens.monitor import PAUSABLE, pause_refusal


def test_every_unpausable_state_has_a_reason() -> None:
    assert "completed" in pause_refusal(RunState.COMPLETED)
    assert "r resumes" in pause_refusal(RunState.INTERRUPTED)
    assert "not reported" in pause_refusal(None)
    for state in set(RunState) - PAUSABLE:
        assert pause_refusal(state).startswith("Nothing to pause")


def test_a_collection_that_was_not_compared_shows_no_green_zero() -> None:
    from ferry.tui.screens.validation import summary_cells

    row = {"name": "docs", "source_count": 1224, "target_count": 0, "missing_total": 0,
           "error": "collection 'docs' does not exist in the target"}  # fmt: skip
    cells = summary_cells(row)
    assert [str(cells[i]) for i in (3, 4, 5)] == ["—", "—", "—"]  # miss, extra, diff
    assert str(summary_cells({**row, "error": None})[3]) == "0"
