"""A plan of an embedded Chroma directory reads its live files in place (core/connectors/chroma/
peek.py) instead of copying the whole directory into a consistent cut first — and reads from
a cut after all whenever the directory moved while it read, or a read needs the whole index.

Everything is real chromadb: the directory is built by PersistentClient, and the write that
moves it mid-plan is a PersistentClient write.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.core.connectors import open_connector
from ferry.core.connectors.base import mark_plan_only
from ferry.core.connectors.chroma.cut import copy_file
from ferry.core.connectors.chroma.file_rows import FileRows
from ferry.core.connectors.chroma.peek import IN_PLACE_NOTE
from ferry.core.errors import FerryError
from ferry.core.inventory import load_inventory
from tests.conftest import dir_checksum, make_chroma


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A persisted index (over chroma's sync threshold of 1,000) and a collection whose
    vectors are only in the log."""
    root = tmp_path_factory.mktemp("plan-in-place") / "app"
    return make_chroma(
        root,
        {
            "big": {"metric": "cosine", "n": 2_500, "dim": 16, "seed": 1},
            "small": {"metric": "l2", "n": 40, "dim": 16, "seed": 2},
        },
    )


async def plan_of(uri: str, plan_only: bool, name: str) -> tuple[Any, Any, Any]:
    """(describe, sample, the connector's cut) as a plan reads them."""
    async with open_connector(uri) as connector:
        if plan_only:
            mark_plan_only(connector)
        info = await connector.describe(name)
        sample = await connector.sample(name)
        return info, sample, connector.cut


def same_batch(a: Any, b: Any) -> bool:
    return (
        a.ids == b.ids
        and a.metadatas == b.metadatas
        and a.documents == b.documents
        and np.array_equal(a.vectors, b.vectors)
    )


def test_a_plan_reads_in_place_what_a_cut_reads_and_copies_nothing(source: Path) -> None:
    before = dir_checksum(source)
    uri = f"chroma+file://{source}"
    info, sample, cut = asyncio.run(plan_of(uri, True, "big"))
    info_cut, sample_cut, cut_taken = asyncio.run(plan_of(uri, False, "big"))
    assert cut is None and cut_taken is not None  # the plan copied nothing
    assert info.facts["cut"] == IN_PLACE_NOTE
    assert "cut_seq_id" not in info.facts  # only a run's cut is a catch-up watermark
    for field in ("count", "dimension", "metric", "metadata_keys"):
        assert getattr(info, field) == getattr(info_cut, field), field
    assert info.count == 2_500
    assert len(sample.ids) > 0 and same_batch(sample, sample_cut)
    assert dir_checksum(source) == before  # the source is read-only


def test_records_only_in_the_log_are_read_in_place_too(source: Path) -> None:
    info, sample, cut = asyncio.run(plan_of(f"chroma+file://{source}", True, "small"))
    assert cut is None and info.count == 40 and len(sample.ids) == 40


def test_the_inventory_of_every_collection_takes_no_cut(source: Path) -> None:
    inventory = asyncio.run(load_inventory(f"chroma+file://{source}"))
    counts = {plan.source.name: plan.source.count for plan in inventory.plans}
    assert counts == {"big": 2_500, "small": 40}
    assert all(plan.source.facts.get("cut") == IN_PLACE_NOTE for plan in inventory.plans)


def test_a_directory_written_during_the_plan_is_read_from_a_cut(
    source: Path, tmp_path: Path
) -> None:
    """The application commits a write while the plan reads: what was read in place is
    dropped, a consistent cut is taken, and every later read comes from it."""
    import shutil

    import chromadb
    from chromadb.config import Settings

    app = tmp_path / "app"
    shutil.copytree(source, app)

    async def go() -> tuple[str, int, int, Any]:
        async with open_connector(f"chroma+file://{app}") as connector:
            mark_plan_only(connector)

            writes: list[str] = []

            def describe_while_the_app_writes(reader: Any) -> Any:
                info = reader.describe("big")
                if writes:
                    return info  # the second call, on the cut
                writes.append("new")
                client = chromadb.PersistentClient(
                    str(app), settings=Settings(anonymized_telemetry=False)
                )
                client.get_collection("big").add(ids=["new"], embeddings=[[0.5] * 16])
                return info

            how, info = await asyncio.to_thread(connector._planned, describe_while_the_app_writes)
            again = await connector.describe("big")
            return how, info.count, again.count, connector.cut

    how, first, again, cut = asyncio.run(go())
    assert how == "cut" and cut is not None
    assert first == again == 2_501  # both of one moment: the cut's, after the write


def test_a_live_index_file_cut_short_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """hnswlib rewrites its files truncated: a memory map would die of SIGBUS past the new
    end; rows read with pread come back short, and that is a FerryError."""
    rows = np.arange(50 * 12, dtype=np.uint8).reshape(50, 12)
    file = tmp_path / "data_level0.bin"
    file.write_bytes(rows.tobytes())
    reader = FileRows(file, 50, "u1", width=12)
    picked = np.array([3, 4, 5, 40, 2, 2])
    assert np.array_equal(reader[picked], rows[picked])
    assert np.array_equal(reader[picked, slice(4, 8)], rows[picked, 4:8])
    assert np.array_equal(reader[picked, 2], rows[picked, 2])
    norms = FileRows(file, 150, "<f4")  # one float32 per row, as length.bin
    assert np.array_equal(norms[np.array([7, 8])], rows.reshape(-1).view("<f4")[[7, 8]])
    with file.open("r+b") as handle:
        handle.truncate(12 * 10)  # what the application's rewrite leaves for a moment
    with pytest.raises(FerryError, match="shorter than its header says"):
        reader[picked]


@pytest.mark.parametrize("across", [False, True], ids=["same file system", "across (EXDEV)"])
def test_a_cut_copies_each_file_exactly(tmp_path: Path, across: bool) -> None:
    """`copy_file_range` (a reflink where the file system shares extents); across file
    systems the kernel refuses it (EXDEV, Linux ≥ 5.19) and shutil copies instead."""
    import os

    shm = Path("/dev/shm")
    if across and not shm.is_dir():
        pytest.skip("no /dev/shm: no second file system to copy across")
    folder = shm / f"ferry-test-{os.getpid()}" if across else tmp_path / "from"
    folder.mkdir(parents=True)
    try:
        source = folder / "data_level0.bin"
        source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
        copy = tmp_path / "copy.bin"
        copy_file(source, copy)
        assert copy.read_bytes() == source.read_bytes()
    finally:
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
