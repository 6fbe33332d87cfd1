"""The Ferry theme: every base colour is an exact xterm-256 palette entry.

Over SSH `COLORTERM` is usually not forwarded, so the terminal gets 256 colours and Textual
maps each truecolor to its nearest palette entry. Starting from palette entries means that
mapping changes nothing: what we see in a truecolor terminal is what an SSH user sees.
"""

from __future__ import annotations

from textual.theme import Theme

FERRY_THEME = Theme(
    name="ferry",
    primary="#5fafff",  # 75
    secondary="#87afd7",  # 110
    accent="#ffaf5f",  # 215
    warning="#ffd75f",  # 221
    error="#ff5f5f",  # 203
    success="#87d787",  # 114
    foreground="#e4e4e4",  # 254
    background="#1c1c1c",  # 234
    surface="#262626",  # 235
    panel="#303030",  # 236
    dark=True,
)

# Run states and collection phases share their words, so one table styles both.
_STATE_STYLE = {
    "pending": "dim",
    "running": "green",
    "paused": "yellow",
    "cancelling": "yellow",
    "completed": "cyan",
    "indexing": "magenta",
    "skipped": "dim",
    "failed": "bold red",
    "cancelled": "yellow",
    "interrupted": "bold red",
    "throttled": "yellow",
}
_BANNER_STYLE = {
    "running": "bold green",
    "paused": "bold yellow",
    "cancelling": "bold yellow",
    "completed": "bold cyan",
    "interrupted": "bold red",
    "failed": "bold red",
    "cancelled": "yellow",
}


def style_of(state: str) -> str:
    """Rich style for a run state or a collection phase ("" when it has none)."""
    return _STATE_STYLE.get(str(state), "")


def banner_style_of(state: str) -> str:
    """Rich style in the shell header, where the state stands alone."""
    return _BANNER_STYLE.get(str(state), "dim")
