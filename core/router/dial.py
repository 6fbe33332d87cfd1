"""Moving the canary dial from a screen: the state change and its journal row together, as
`ferry router set canary --percent N` makes them (cli/cutover.py), so the TUI and the CLI
leave the same trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferry.core.router.canary import check_percent
from ferry.core.router.state import Mode, read_state, read_stats, set_mode, summarize_stats


def dial_view(path: Path) -> dict[str, Any]:
    """What the Cutover screen shows of the canary: mode, share, measured split, rollback."""
    state = read_state(path)
    stats = summarize_stats(read_stats(path)) or {}
    canary = stats.get("canary") or {}
    return {
        "mode": state["mode"],
        "percent": float(state.get("percent") or 0) if state["mode"] == Mode.CANARY else None,
        "measured": canary.get("target_share"),
        "rolled_back": state.get("rolled_back"),
        "reason": state.get("reason"),
    }


def move_dial(
    path: Path, percent: float, journal: Any, reason: str | None = None
) -> dict[str, Any]:
    """Set the canary to `percent` (entering canary mode if needed) and journal it."""
    percent = check_percent(percent, "the canary share")
    before = read_state(path)
    old = float(before.get("percent") or 0) if before["mode"] == Mode.CANARY else None
    state, previous = set_mode(path, Mode.CANARY, reason=reason, percent=percent)
    journal.cutovers.record(
        action="router",
        target_uri=str(state.get("target_uri") or f"router:{path}"),
        alias=str(state.get("alias") or path.stem),
        from_collection=f"canary {old:g}%" if old is not None else previous,
        to_collection=f"canary {percent:g}%",
        reason=reason,
        detail={"state_file": str(path), "percent": percent, "from": "the Cutover screen"},
    )
    return {"from": previous, "from_percent": old, "percent": percent}
