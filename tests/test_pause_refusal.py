"""`p` on a run that cannot pause says why instead of doing nothing silently."""

from core.runs import RunState
from tui.screens.monitor import PAUSABLE, pause_refusal


def test_every_unpausable_state_has_a_reason() -> None:
    assert "completed" in pause_refusal(RunState.COMPLETED)
    assert "r resumes" in pause_refusal(RunState.INTERRUPTED)
    assert "not reported" in pause_refusal(None)
    for state in set(RunState) - PAUSABLE:
        assert pause_refusal(state).startswith("Nothing to pause")
