"""The canary dial on the real Cutover screen: `]` asks for the new share to be typed, moves
the router state one stop (0 → 1 → 5 %), journals each move, and shows the dial and the last
automatic rollback; a wrong answer changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button

from ferry.core.journal import Journal
from ferry.core.router import read_state
from ferry.core.router.state import Mode, set_mode
from ferry.tui.app import FerryApp
from ferry.tui.widgets.confirm import TypedConfirm
from tests.tui_helpers import wait_for, wait_for_text

SIZE = (100, 30)


async def test_the_dial_moves_a_stop_at_a_time_behind_a_typed_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "router.json"
    set_mode(state, Mode.DUAL_WRITE)
    monkeypatch.setenv("FERRY_ROUTER_STATE", str(state))
    journal_path = tmp_path / "journal.sqlite3"
    app = FerryApp(journal_path, start="cutover")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_text(pilot, "Canary: off (router dual-write)")
        await pilot.press("right_square_bracket")
        modal = await wait_for(
            pilot, lambda: isinstance(app.screen, TypedConfirm) and app.screen, what="confirm"
        )
        await pilot.press("5", "enter")  # the wrong share: refused, nothing changes
        assert app.screen is modal and modal.query_one("#confirm", Button).disabled
        await pilot.press("backspace", "1", "enter")
        await wait_for_text(pilot, "Canary: 1 % of keyed reads on the target")
        assert (read_state(state)["mode"], read_state(state)["percent"]) == ("canary", 1)

        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: isinstance(app.screen, TypedConfirm), what="confirm")
        await pilot.press("5", "enter")
        await wait_for_text(pilot, "Canary: 5 % of keyed reads on the target")

        # An app's automatic rollback shows on the next refresh.
        set_mode(
            state,
            Mode.CANARY,
            reason="automatic rollback: secondary error rate 40.0% > 5.0%",
            percent=0.0,
            rolled_back={"reasons": ["secondary error rate 40.0% > 5.0%"]},
        )
        await pilot.press("f5")
        await wait_for_text(pilot, "last automatic rollback: secondary error rate 40.0%")

    rows = Journal(journal_path).cutovers.history()
    assert [(r.from_collection, r.to_collection) for r in rows] == [
        ("canary 1%", "canary 5%"),
        ("dual-write", "canary 1%"),
    ]
