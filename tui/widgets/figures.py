"""How figures read on screen: short, aligned, the same everywhere in the app.

Pure functions of their arguments (no clock), so snapshots of a fixed journal never change.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def count(n: int | float | None) -> str:
    return "—" if n is None else f"{int(n):,}"


def short_count(n: int | None) -> str:
    """At most 8 characters: 999,999 then 1.23M, 12.3M, 123M, 1.23B."""
    if n is None:
        return "—"
    if n < 1_000_000:
        return f"{n:,}"
    for unit, size in (("B", 1e9), ("M", 1e6)):
        if n >= size:
            value = n / size
            return f"{value:.3g}{unit}" if value < 1000 else f"{value:,.0f}{unit}"
    return f"{n:,}"  # pragma: no cover


def rate(records_per_second: float | None) -> str:
    if not records_per_second:
        return "0/s"
    if records_per_second >= 10_000:
        return f"{records_per_second / 1000:,.1f}k/s"
    return f"{records_per_second:,.0f}/s"


def megabytes_per_second(bytes_per_second: float | None) -> str:
    return f"{(bytes_per_second or 0) / 1e6:,.1f} MB/s"


def duration(seconds: float | None) -> str:
    """ETA and elapsed: 42s, 3m05s, 1h02m; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def short_uri(uri: str | None, keep: int = 2) -> str:
    """A URI that fits a header: file paths keep their last `keep` parts.

    `chroma+file:///home/me/.local/share/ferry/demo/chroma` → `chroma+file://…/demo/chroma`.
    Never shows a secret, because URIs never hold one (see core.uri).
    """
    if not uri:
        return "—"
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    if scheme.endswith(("+file", "+edge")):
        parts = [p for p in urlsplit(uri).path.split("/") if p]
        if len(parts) > keep:
            return f"{scheme}://…/{'/'.join(parts[-keep:])}"
        return uri
    return f"{scheme}://{urlsplit(uri).netloc}"


def fit_uri(uri: str | None, room: int) -> str:
    """The whole URI when `room` columns hold it (a 200-column terminal shows whole paths),
    else its last two path parts, else its last one."""
    if uri and len(uri) <= room:
        return uri
    shorter = short_uri(uri)
    return shorter if len(shorter) <= room else short_uri(uri, 1)


def percent(done: int, total: int) -> str:
    if total <= 0:
        return "100%" if done else "0%"
    return f"{100.0 * min(done, total) / total:.0f}%"
