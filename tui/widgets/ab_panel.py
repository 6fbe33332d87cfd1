"""The A/B search panel of a re-embedded copy (Validation screen): shown only when the
highlighted collection was re-embedded, three lines a glance can read."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

BLOCKS = " ▁▂▃▄▅▆▇█"


def distribution_bars(counts: list[int]) -> str:
    """One block per overlap bucket, tallest for the most queries."""
    top = max(counts) if counts and max(counts) else 1
    return "".join(BLOCKS[round(c / top * (len(BLOCKS) - 1))] for c in counts)


def ab_text(ab: dict[str, Any]) -> Text:
    text = Text()
    text.append("A/B search ", style="bold")
    text.append(f"({ab['model']}) ")
    if not ab.get("queries"):
        text.append("no query sampled", style="dim")
        return text
    good = ab["mean_overlap"] >= ab["threshold"]
    text.append(
        f"overlap@{ab['k']} mean {ab['mean_overlap']:.2f}",
        style="bold green" if good else "bold red",
    )
    text.append(
        f" · p10 {ab['p10_overlap']:.2f} · min {ab['min_overlap']:.2f} · {ab['queries']} "
        f"queries · threshold {ab['threshold']:.2f} {'✔' if good else '✘'}"
    )
    determinism = ab["determinism"]
    text.append(
        f"\ndistribution {distribution_bars(ab['histogram']['counts'])} (0 → 1) · model "
        f"determinism: max diff {determinism['max_diff']:.1e} over {determinism['checked']} "
        "documents"
    )
    worst = " · ".join(
        f"{q['id']} {q['overlap']:.2f} {(q.get('document') or '')[:24]!r}" for q in ab["worst"][:2]
    )
    if worst:
        text.append(f"\nworst: {worst}", style="yellow")
    return text


class ABPanel(Static):
    """Hidden unless the collection shown has an A/B report."""

    def show(self, ab: dict[str, Any] | None) -> None:
        self.display = ab is not None
        if ab is not None:
            self.update(ab_text(ab))
