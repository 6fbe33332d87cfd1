"""One record side by side: the Validation screen's detail pane.

Metadata keys are aligned in one table (source | target), values shown with their type
(``1 (int)`` vs ``1.0 (float)``: the difference a validation flags is often only the type),
and a differing row is highlighted. The document gets an inline word diff, the vector its
distance figures (max abs difference after normalising for cosine, and cosine similarity).
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ferry.core.validate import RecordPair, value_repr
from ferry.core.validate.compare import same_value

DIFF_STYLE = "bold red"
ABSENT = Text("— absent —", style="dim italic")
VECTOR_HEAD = 4


class DiffDetail(Static):
    """Shows a `RecordPair`, a message, or nothing (when no difference is selected)."""

    DEFAULT_CSS = """
    DiffDetail { height: auto; padding: 0 1; }
    """

    def show_message(self, message: str) -> None:
        self.update(Text(message, style="dim"))

    def show_pair(self, pair: RecordPair, kind: str = "") -> None:
        self.update(render_pair(pair, kind))


def render_pair(pair: RecordPair, kind: str = "") -> RenderableType:
    title = Text.assemble(("record ", "dim"), (pair.id, "bold"))
    if kind:
        title.append(f"  [{kind}]", style="yellow")
    if pair.fields:
        title.append("  differs: " + ", ".join(pair.fields), style=DIFF_STYLE)
    else:
        title.append("  identical on both sides", style="green")
    rounded = pair.rounded
    if rounded:
        title.append("  target engine rounds doubles: " + ", ".join(rounded), style="cyan")
    table = Table(expand=True, box=None, pad_edge=False, show_edge=False)
    table.add_column("field", style="bold", ratio=2, overflow="fold")
    table.add_column("source", ratio=4, overflow="fold")
    table.add_column("target", ratio=4, overflow="fold")
    src_meta = (pair.source[1] or {}) if pair.source else None
    tgt_meta = (pair.target[1] or {}) if pair.target else None
    keys = sorted(set(src_meta or {}) | set(tgt_meta or {}), key=str)
    for key in keys:
        a = _cell(src_meta, key)
        b = _cell(tgt_meta, key)
        differs = (
            src_meta is None
            or tgt_meta is None
            or key not in src_meta
            or key not in tgt_meta
            or not same_value(src_meta[key], tgt_meta[key])
        )
        style = ("cyan" if f"metadata.{key}" in rounded else DIFF_STYLE) if differs else ""
        table.add_row(Text(str(key), style=style), a, b, style="on grey15" if differs else "")
    if not keys:
        table.add_row(
            Text("metadata", style="dim"), Text("(none)", style="dim"), Text("(none)", style="dim")
        )
    parts: list[RenderableType] = [title, table]
    parts.append(_document(pair))
    parts.append(_vector(pair))
    return Group(*parts)


def _cell(metadata: dict[str, Any] | None, key: str) -> Text:
    if metadata is None or key not in metadata:
        return ABSENT
    return Text(value_repr(metadata[key]))


def _document(pair: RecordPair) -> RenderableType:
    src = pair.source[2] if pair.source else None
    tgt = pair.target[2] if pair.target else None
    text = Text("document ", style="bold")
    if src == tgt:
        text.append("same" if src is not None else "(none on either side)", style="dim")
        if src:
            text.append(f": {_clip(src)}")
        return text
    if src is None or tgt is None:
        text.append(f"source: {_clip(src) if src is not None else '(none)'}", style=DIFF_STYLE)
        text.append(f"   target: {_clip(tgt) if tgt is not None else '(none)'}", style=DIFF_STYLE)
        return text
    matcher = difflib.SequenceMatcher(a=src.split(" "), b=tgt.split(" "), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            text.append(" ".join(src.split(" ")[i1:i2]) + " ")
        if op in ("delete", "replace"):
            text.append(" ".join(src.split(" ")[i1:i2]) + " ", style="strike red")
        if op in ("insert", "replace"):
            text.append(" ".join(tgt.split(" ")[j1:j2]) + " ", style="bold green")
    return text


def _vector(pair: RecordPair) -> RenderableType:
    text = Text("vector ", style="bold")
    for label, side in (("source", pair.source), ("target", pair.target)):
        if side is None:
            text.append(f"{label}: absent  ", style="dim")
            continue
        v = np.asarray(side[0], dtype=np.float64)
        head = ", ".join(f"{x:.3f}" for x in v[:VECTOR_HEAD])
        text.append(f"{label}: d={v.size} |v|={np.linalg.norm(v):.3f} [{head}…]  ")
    if pair.max_abs_diff is not None:
        style = DIFF_STYLE if "vector" in pair.fields else "green"
        cosine = "—" if pair.cosine is None else f"{pair.cosine:.6f}"
        text.append(f"\n  max abs diff {pair.max_abs_diff:.3g}  cosine {cosine}", style=style)
    return text


def _clip(value: str, width: int = 160) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"
