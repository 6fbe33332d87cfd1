"""One inventory for the CLI and the TUI, and connectors a view keeps open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ferry.core.connectors import WriteMode, open_connector
from ferry.core.errors import FerryError
from ferry.core.inventory import load_inventory, take_inventory
from ferry.core.model import Batch, CollectionInfo, Metric
from ferry.core.validate import fetch_pair_connectors
from tests.conftest import make_chroma


async def edge_source(tmp_path: Path) -> str:
    """A Qdrant Edge collection: an engine that keeps no list of its metadata keys."""
    uri = f"qdrant+edge://{tmp_path / 'edge'}"
    async with open_connector(uri) as edge:
        await edge.prepare(CollectionInfo("notes", 0, 4, Metric.IP), WriteMode.CREATE)  # type: ignore[attr-defined]
        await edge.write(  # type: ignore[attr-defined]
            "notes",
            Batch(
                ["a b", "c"],
                np.ones((2, 4), np.float32),
                [{"lang": "en"}, {"page": 3}],
                ["x", None],
            ),
        )
    return uri


async def test_metadata_keys_are_sampled_where_the_engine_keeps_no_list(tmp_path: Path) -> None:
    inventory = await load_inventory(await edge_source(tmp_path))
    (plan,) = inventory.plans
    assert plan.source.metadata_keys == ["lang", "page"]
    assert "metadata keys sampled from the first 2 records" in plan.notes
    assert inventory.to_json()["collections"][0]["metadata_keys"] == ["lang", "page"]
    assert not inventory.has_target and inventory.source_summary.startswith("qdrant-edge, ")


async def test_chroma_lists_its_keys_and_the_plan_notes_come_from_the_traits(
    tmp_path: Path,
) -> None:
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "l2", "n": 30, "dim": 4}})
    alone = await load_inventory(f"chroma+file://{src}")
    (plan,) = alone.plans
    assert "int" in plan.source.metadata_keys and not plan.source.facts.get("metadata_keys_sampled")
    # Without a target, the default one (Qdrant): ids are mapped, l2 is reported differently.
    assert any(note.startswith("ids need mapping (all)") for note in plan.notes)
    assert "l2: Chroma reports squared distance, Qdrant plain distance" in plan.notes
    assert alone.to_json()["schema"]["summary"]  # Chroma's on-disk schema state

    async with (
        open_connector(f"chroma+file://{src}") as source,
        open_connector("memory://target") as target,
    ):
        planned = await take_inventory(source, target)
    (plan,) = planned.plans
    assert planned.has_target and plan.id_mapping == "none"  # memory keeps any id
    assert not any("l2:" in note for note in plan.notes)


async def test_a_source_that_does_not_answer_is_its_own_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FerryError, match="not a Chroma directory"):
        await load_inventory(f"chroma+file://{tmp_path / 'nothing'}")


async def test_one_pair_of_open_connectors_serves_many_records(tmp_path: Path) -> None:
    """What a diff viewer does: open both sides once, fetch record after record."""
    src = make_chroma(tmp_path / "src", {"docs": {"metric": "cosine", "n": 12, "dim": 4}})
    async with (
        open_connector(f"chroma+file://{src}") as source,
        open_connector(f"qdrant+edge://{tmp_path / 'edge'}") as target,
    ):
        info = await source.describe("docs")
        await target.prepare(info, WriteMode.CREATE)  # type: ignore[attr-defined]
        async for batch in source.read("docs", None, 100):
            await target.write("docs", batch)  # type: ignore[attr-defined]
        for record_id in ("rec-1", "rec-2"):
            pair = await fetch_pair_connectors(source, target, "docs", record_id)
            assert pair.source is not None and pair.target is not None and pair.fields == []
        missing = await fetch_pair_connectors(source, target, "docs", "no-such-id")
        assert missing.fields == ["record"] and missing.source is None
