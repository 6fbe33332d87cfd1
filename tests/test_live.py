"""Live sources (core/live): migrate an embedded Chroma directory a real process keeps
writing, catch up, follow, cut over at lag 0, and dual-write without lost updates.

The writer (tests/live_writer.py) is a separate process using chromadb.PersistentClient:
batched adds, upserts (a version counter in each record) and deletes, some deleted ids
coming back. What the target must hold is the writer's own account of the final state —
never Ferry's reader of the source.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.cli import main
from ferry.core.connectors import open_connector
from ferry.core.connectors.chroma.cut import take_cut
from ferry.core.journal import Journal
from ferry.core.live.changes import measure_lag
from ferry.core.live.follow import wait_for_lag_zero
from ferry.core.live.store import LiveStore
from tests.conftest import wait_until
from tests.names import KEEP_NAMES

ROOT = Path(__file__).resolve().parents[1]
NAME = "docs"


class Writer:
    """The application: a process writing DIR through chromadb (or the router)."""

    def __init__(self, tmp: Path, seconds: float, changes: int, server: str | None = None):
        self.dir = tmp / "app-chroma"
        self.out = tmp / "writer.json"
        argv = [sys.executable, "-m", "tests.live_writer", str(self.dir), NAME]
        argv += [str(seconds), str(changes), str(self.out)] + ([server] if server else [])
        self.log = tmp / "writer.log"  # a file, not a pipe: a full pipe would stall the app
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stderr=log)
        wait_until(lambda: Path(f"{self.dir}.ready").exists() or self.proc.poll() is not None, 120)
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    @property
    def writing(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> dict[str, Any]:
        """Wait for the writer's end; its account: id → version, changes, seconds."""
        assert self.proc.wait(timeout=180) == 0, self.log.read_text()[-2000:]
        return json.loads(self.out.read_text())

    def stop(self) -> None:
        Path(f"{self.dir}.stop").write_text("stop")


def ferry(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else out


def read_target(uri: str, name: str) -> dict[str, tuple[Any, Any, np.ndarray]]:
    """Every record on the target: id → (metadata, document, vector)."""

    async def go() -> dict[str, tuple[Any, Any, np.ndarray]]:
        connector = open_connector(uri)
        out: dict[str, tuple[Any, Any, np.ndarray]] = {}
        try:
            async for batch in connector.read(name, None, 500):
                for i, rid in enumerate(batch.ids):
                    out[rid] = (batch.metadatas[i], batch.documents[i], batch.vectors[i])
        finally:
            await connector.close()
        return out

    return asyncio.run(go())


def torn(records: dict[str, tuple[Any, Any, np.ndarray]]) -> list[str]:
    """Records whose vector, metadata and document are not one version of the writer's."""
    bad = []
    for rid, (metadata, document, vector) in records.items():
        version = (metadata or {}).get("v")
        if document != f"{rid}:{version}" or float(vector[0]) != float(version):
            bad.append(rid)
    return bad


def differences(records: dict[str, tuple[Any, Any, np.ndarray]], truth: dict[str, int]) -> dict:
    """Lost (in the source, not the target), resurrected (the other way) and stale records."""
    return {
        "lost": sorted(set(truth) - set(records))[:5],
        "resurrected": sorted(set(records) - set(truth))[:5],
        "stale": sorted(
            rid for rid in set(truth) & set(records) if records[rid][0].get("v") != truth[rid]
        )[:5],
        "torn": torn(records)[:5],
    }


CLEAN = {"lost": [], "resurrected": [], "stale": [], "torn": []}


def test_migrate_while_the_app_writes_then_catch_up_equals_the_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = Writer(tmp_path, seconds=30, changes=3_000)  # ~3 s at ~1,000/s
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    state = str(tmp_path / "journal.sqlite3")
    argv = (
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{writer.dir}",
        "--to",
        target,
        "--yes",
    )
    argv += ("--json", "--state", state)
    code, first = ferry(*argv, capsys=capsys)
    assert code == 0, first
    assert first["collections"][0]["status"] == "completed"
    assert first["collections"][0]["search_ready"] is True
    # The copy is one cut: every record on the target is one whole version of the writer's.
    copied = read_target(target, NAME)
    assert torn(copied) == []
    cut = LiveStore(Journal(state)).of_run(first["run_id"])[NAME]
    assert cut.cut_seq_id > 0 and "consistent cut" in (cut.note or "")

    truth = writer.finish()
    code, again = ferry(*argv, capsys=capsys)
    assert code == 0, again
    assert again["run_id"] == first["run_id"]  # a catch-up of that run, not a second copy
    caught = again["catch_up"][0]
    assert caught["from_seq_id"] == cut.cut_seq_id and caught["to_seq_id"] > cut.cut_seq_id
    assert caught["upserted"] > 0 and caught["deleted"] > 0  # the app wrote after the cut
    records = read_target(target, NAME)
    assert differences(records, truth["versions"]) == CLEAN
    assert len(records) == len(truth["versions"])

    code, idle = ferry(*argv, capsys=capsys)  # nothing changed since: nothing applied
    assert code == 0 and idle["catch_up"][0]["upserted"] == idle["catch_up"][0]["deleted"] == 0
    # The watermark and the lag, as `ferry status` shows them.
    code, status = ferry("status", first["run_id"], "--json", "--state", state, capsys=capsys)
    live = status["collections"][0]["live"]
    assert live["cut_seq_id"] == caught["to_seq_id"] and live["lag_changes"] == 0
    assert live["catch_ups"] == 2 and live["following"] is False
    code, text = ferry("status", first["run_id"], "--state", state, capsys=capsys)
    assert "live source: lag 0" in text


def test_cuts_taken_while_the_app_writes_read_back_whole(tmp_path: Path) -> None:
    """The app writing continuously: each cut reads back consistently (the file reader
    plans every collection on it), however many tries it took, and the source is never
    written by Ferry."""
    from ferry.core.connectors.chroma.files import ChromaDirectory

    writer = Writer(tmp_path, seconds=20, changes=20_000)
    tries = []
    try:
        for _ in range(3):

            def check(copy: Path) -> None:
                with ChromaDirectory(copy, cut=True) as reader:
                    reader.check_collections()
                    info = reader.describe(NAME)
                    batch = next(reader.read(NAME, None, 10_000))
                    assert info.count == len(batch.ids)
                    versions = [m["v"] for m in batch.metadatas]
                    assert [d.split(":")[1] for d in batch.documents] == [str(v) for v in versions]
                    assert batch.vectors[:, 0].tolist() == [float(v) for v in versions]

            cut = take_cut(writer.dir, check, root=tmp_path / "cuts")
            tries.append(cut.tries)
            cut.remove()
    finally:
        writer.stop()
        writer.finish()
    assert len(tries) == 3
    assert not list((tmp_path / "cuts").iterdir())  # every private copy removed


def test_follow_then_cutover_at_lag_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    writer = Writer(tmp_path, seconds=30, changes=3_000)
    root = tmp_path / "edge"
    target = f"qdrant+edge://{root}"
    state = str(tmp_path / "journal.sqlite3")
    follower_log = tmp_path / "follower.log"
    log = follower_log.open("wb")
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferry.cli",
            "migrate",
            *KEEP_NAMES,
            "--from",
            f"chroma+file://{writer.dir}",
        ]
        + ["--to", target, "--collection", f"{NAME}={NAME}_v2", "--yes", "--json"]
        + ["--state", state, "--follow", "--follow-interval", "0.2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ},
    )
    log.close()  # the child has its own handle
    journal = Journal(state)
    store = LiveStore(journal)

    def followed() -> Any:
        rows = journal._all("SELECT run_id FROM live_cuts")  # noqa: SLF001
        live = store.get(rows[0]["run_id"], NAME) if rows else None
        return live if live is not None and live.following else None

    try:
        live = wait_until(lambda: followed() or follower.poll() is not None, 180)
        assert follower.poll() is None, follower_log.read_text()[-2000:]
        truth = writer.finish()
        paused = time.time()
        # The follower reaches lag 0 once the app paused (a report made after the pause):
        # then validate and cut over.
        wait_until(
            lambda: (
                (r := followed()) is not None
                and r.updated_at > paused
                and r.pending == 0
                and r.catch_ups
            ),
            120,
        )
        assert measure_lag(writer.dir, *_segment_of(state, live), None).zero
        code, validation = ferry(
            "validate", "--from", f"chroma+file://{writer.dir}", "--to", target,
            "--collection", f"{NAME}={NAME}_v2", "--json", "--state", state, capsys=capsys,
        )  # fmt: skip
        assert code == 0, json.dumps(validation)[:3000]
        code, switched = ferry(
            "cutover", "--to", target, "--collection", f"{NAME}_v2", "--alias", NAME,
            "--yes", "--json", "--state", state, capsys=capsys,
        )  # fmt: skip
        assert code == 0, switched
        assert any("is followed" in w and "waits for lag 0" in w for w in switched["warnings"])
        # Cut over: the follower stops by itself, its run completed.
        assert follower.wait(timeout=120) == 0, follower_log.read_text()[-2000:]
    finally:
        if follower.poll() is None:
            follower.send_signal(signal.SIGINT)
            follower.wait(timeout=60)
        if writer.writing:
            writer.stop()
    outcome = json.loads(follower.stdout.read() if follower.stdout else "{}")
    assert outcome["status"] == "completed" and outcome["catch_up"]
    records = read_target(target, f"{NAME}_v2")
    assert differences(records, truth["versions"]) == CLEAN


def _segment_of(state: str, live: Any) -> tuple[str, str, int]:
    """(collection id, metadata segment, watermark) of the followed collection."""
    from ferry.core.connectors.chroma.files import ChromaDirectory

    journal = Journal(state)
    run = journal.runs.get(live.run_id)
    assert run is not None
    source = Path(run.source_uri.removeprefix("chroma+file://"))
    with ChromaDirectory(source) as reader:
        facts = reader.describe(NAME).facts
    latest = LiveStore(journal).get(live.run_id, NAME)
    assert latest is not None
    return facts["collection_id"], facts["metadata_segment"], latest.cut_seq_id


def test_a_cutover_waits_for_a_followed_collection_and_refuses_when_it_lags(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    run_id = journal.runs.create("k", "chroma+file:///s", "qdrant+edge:///t", [], {}, {})
    store = LiveStore(journal)
    store.start(run_id, NAME, "docs_v2", 10, 0.0, str(tmp_path / "ids"), None)
    assert asyncio.run(wait_for_lag_zero(journal, "qdrant+edge:///t", "docs_v2", 1)) is None
    store.set_lag(run_id, NAME, 25, 15, 0.0, following=True)  # a follower, 15 behind
    with pytest.raises(Exception, match="still lag 15 changes"):
        asyncio.run(wait_for_lag_zero(journal, "qdrant+edge:///t", "docs_v2", 0.5, poll=0.05))

    async def catches_up() -> Any:
        waiting = asyncio.ensure_future(
            wait_for_lag_zero(journal, "qdrant+edge:///t", "docs_v2", 30, poll=0.05)
        )
        await asyncio.sleep(0.2)
        assert not waiting.done()  # still 15 behind: the cutover waits
        store.set_lag(run_id, NAME, 25, 0, None, following=True)
        return await waiting

    assert asyncio.run(catches_up()).pending == 0


def read_chroma_server(uri: str, name: str) -> dict[str, tuple[Any, Any, np.ndarray]]:
    """The target as chromadb itself returns it (not Ferry's reader)."""
    import chromadb
    from chromadb.config import Settings

    host, port = uri.removeprefix("chroma+http://").rsplit(":", 1)
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )
    got = client.get_collection(name).get(include=["metadatas", "documents", "embeddings"])
    return {
        rid: (got["metadatas"][i], got["documents"][i], np.asarray(got["embeddings"][i]))
        for i, rid in enumerate(got["ids"])
    }


def test_dual_write_first_then_copy_then_catch_up_loses_no_update(
    tmp_path: Path, fresh_chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented order (docs/live-migration.md): the app dual-writes through the router
    *before* the bulk copy's cut; the copy may put an old version over a newer dual-written
    one, or bring back a record the app deleted — the catch-up re-applies every change after
    the cut from a later cut, so once writes pause nothing is lost, stale or resurrected."""
    server = fresh_chroma_server.removeprefix("chroma+http://")
    writer = Writer(tmp_path, seconds=30, changes=3_000, server=server)
    state = str(tmp_path / "journal.sqlite3")
    argv = (
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{writer.dir}",
        "--to",
        fresh_chroma_server,
    )
    argv += ("--mode", "append", "--yes", "--json", "--state", state)
    code, first = ferry(*argv, capsys=capsys)  # the app's dual-write made the collection
    assert code == 0, first
    truth = writer.finish()
    code, again = ferry(*argv, capsys=capsys)
    assert code == 0, again
    assert again["catch_up"][0]["upserted"] > 0  # the app wrote after the copy's cut
    records = read_chroma_server(fresh_chroma_server, NAME)
    assert differences(records, truth["versions"]) == CLEAN
    code, validation = ferry(
        "validate", "--from", f"chroma+file://{writer.dir}", "--to", fresh_chroma_server,
        "--full", "--json", "--state", state, capsys=capsys,
    )  # fmt: skip
    assert code == 0, json.dumps(validation)[:2000]


def test_a_raced_cut_is_taken_again_and_a_hopeless_one_is_refused(tmp_path: Path) -> None:
    """The retake rule on demand: a copy that does not read back while the source moved is
    a race (taken again); one that does not read back while the source stood still is the
    directory's own fault (raised at once); a race that never ends is refused in time."""
    import chromadb
    from chromadb.config import Settings

    from ferry.core.errors import FerryError

    source = tmp_path / "src"
    client = chromadb.PersistentClient(str(source), settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection(NAME, metadata={"hnsw:space": "l2"})
    collection.add(ids=["a", "b"], embeddings=[[0.0, 1.0], [1.0, 0.0]])
    calls = []

    def app_writes_once(copy: Path) -> None:
        calls.append(copy)
        if len(calls) == 1:  # the application commits a write while Ferry reads the copy
            collection.upsert(ids=["c"], embeddings=[[1.0, 1.0]])
            raise FerryError("index_metadata.pickle ends early", where=str(copy))

    cut = take_cut(source, app_writes_once, root=tmp_path / "cuts")
    try:
        assert cut.tries == 2 and "taken 2 times" in cut.describe()
        from ferry.core.connectors.chroma.files import ChromaDirectory

        with ChromaDirectory(cut.path, cut=True) as reader:
            assert reader.describe(NAME).count == 3  # the newer cut has the write
    finally:
        cut.remove()

    def broken(copy: Path) -> None:
        raise FerryError("index_metadata.pickle ends early", where=str(copy))

    with pytest.raises(FerryError, match="ends early"):
        take_cut(source, broken, root=tmp_path / "cuts")  # nothing moved: not a race

    def always_racing(copy: Path) -> None:
        collection.upsert(ids=["d"], embeddings=[[float(len(calls)), 1.0]])
        calls.append(copy)
        raise FerryError("vector index and metadata disagree", where=str(copy))

    with pytest.raises(FerryError, match=r"could not take a consistent cut in 0s \(\d+ tries"):
        take_cut(source, always_racing, give_up_after=0.0, root=tmp_path / "cuts")
    assert not list((tmp_path / "cuts").iterdir())


def test_a_chroma_server_source_that_changes_during_the_copy_is_said_so(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server has no cut: Ferry counts before and after the read and says what to do."""
    import threading
    import uuid

    import chromadb
    from chromadb.config import Settings

    host, port = chroma_server.removeprefix("chroma+http://").rsplit(":", 1)
    client = chromadb.HttpClient(
        host=host, port=int(port), settings=Settings(anonymized_telemetry=False)
    )
    name = f"live-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(name)
    rng = np.random.default_rng(0)
    collection.add(ids=[f"s{i}" for i in range(1500)], embeddings=rng.random((1500, 4)).tolist())
    done = threading.Event()

    def app() -> None:  # keeps adding while Ferry reads
        k = 0
        while not done.is_set():
            collection.add(ids=[f"n{k}-{j}" for j in range(20)], embeddings=rng.random((20, 4)))
            k += 1

    writer = threading.Thread(target=app, daemon=True)
    writer.start()
    try:
        code, outcome = ferry(
            "migrate", *KEEP_NAMES, "--from", chroma_server, "--to", f"jsonl+file://{tmp_path / 'out'}",
            "--collection", name, "--batch-size", "100", "--yes", "--json",
            "--state", str(tmp_path / "j.sqlite3"), capsys=capsys,
        )  # fmt: skip
    finally:
        done.set()
        writer.join(timeout=30)
    # Honest either way: the count check fails the copy (exit 1) when the counts differ at
    # its end, and the warning says the source changed while it was read and what to do.
    assert code in (0, 1), outcome
    assert any("changed while it was copied" in w for w in outcome["warnings"]), outcome
    if code == 1:
        assert "the source changed during the copy" in outcome["collections"][0]["error"]


async def test_a_record_dual_written_during_the_copy_warns_and_the_target_is_indexed(
    tmp_path: Path,
) -> None:
    """Item 5 of issue 20: the application dual-writes a new record into the target while
    the copy runs. The count check compares with the cut and warns (it used to fail the run
    with exit 1 and leave the target unindexed); the target is search-ready."""
    from ferry.core.engine import MigrationOptions
    from ferry.core.model import Batch
    from ferry.core.runner import migrate
    from tests.conftest import make_chroma

    src = make_chroma(tmp_path / "src", {NAME: {"metric": "l2", "n": 30, "dim": 4}})
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    journal = Journal(tmp_path / "j.sqlite3")

    def app_dual_writes(engine: Any) -> None:
        write = engine.target.write

        async def with_the_app(name: str, batch: Batch) -> None:
            await write(name, batch)
            if not getattr(engine, "app_wrote", False):  # once: a record the cut lacks
                engine.app_wrote = True
                extra = Batch(["app-new"], np.ones((1, 4), dtype=np.float32), [{"v": 1}], ["x"])
                await write(name, extra)

        engine.target.write = with_the_app

    outcome = await migrate(
        f"chroma+file://{src}", target, [], MigrationOptions(), journal, on_engine=app_dual_writes
    )
    assert outcome.status.value == "completed"
    assert outcome.collections[0].search_ready is True
    warnings = [e.message for e in journal.events.after(outcome.run_id) if e.kind == "warning"]
    assert any("target holds 31 records, the source's cut 30" in w for w in warnings), warnings


async def test_the_monitor_row_shows_the_lag() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from ferry.core.model import Phase
    from ferry.core.runs import CollectionView
    from ferry.tui.screens.monitor import CollectionRow

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield CollectionRow(NAME)

    live = {"lag_changes": 1_200, "lag_seconds": 3.25, "following": True, "cut_seq_id": 9}
    view = CollectionView("r", NAME, NAME, Phase.COMPLETED, total=10, records_written=10, live=live)
    async with Host().run_test() as pilot:
        row = pilot.app.query_one(CollectionRow)
        row.show(view)
        await pilot.pause()
        figures = row.query_one(".collection-figures", Static)
        shown = str(getattr(figures, "renderable", None) or figures.render())
    assert "following · lag 1,200 changes, 3.2 s" in shown


def test_after_the_lock_free_tries_a_cut_uses_sqlites_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bounded fallback: SQLite's backup API (a read lock for one file's copy), said."""
    from ferry.core.connectors.chroma import cut as cuts
    from ferry.core.connectors.chroma.files import ChromaDirectory
    from tests.conftest import dir_checksum, make_chroma

    src = make_chroma(tmp_path / "src", {NAME: {"metric": "l2", "n": 40, "dim": 4}})
    before = dir_checksum(src)
    monkeypatch.setattr(cuts, "LOCK_FREE_TRIES", 0)
    cut = take_cut(src, root=tmp_path / "cuts")
    try:
        assert cut.how.startswith("SQLite backup (read lock held")
        with ChromaDirectory(cut.path, cut=True) as reader:
            assert reader.describe(NAME).count == 40
    finally:
        cut.remove()
    assert dir_checksum(src) == before  # the source is only ever read


def test_a_copy_killed_and_resumed_under_writes_still_catches_up_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resumed from a newer cut, the copy keeps the first cut's watermark and the ids of
    both cuts: the catch-up still deletes what either copied and the app deleted since."""
    writer = Writer(tmp_path, seconds=30, changes=3_000)
    target = f"qdrant+edge://{tmp_path / 'edge'}"
    state = str(tmp_path / "journal.sqlite3")
    argv = [
        "migrate",
        *KEEP_NAMES,
        "--from",
        f"chroma+file://{writer.dir}",
        "--to",
        target,
        "--yes",
    ]
    argv += ["--json", "--state", state, "--batch-size", "100"]
    killed = subprocess.run(
        [sys.executable, "-m", "ferry.cli", *argv],
        cwd=ROOT,
        env={**os.environ, "FERRY_KILL_AT": "write:3"},
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    journal = Journal(state)
    run_id = journal._all("SELECT run_id FROM runs")[0]["run_id"]  # noqa: SLF001
    first_cut = LiveStore(journal).get(run_id, NAME)
    assert first_cut is not None
    code, resumed = ferry(*argv, capsys=capsys)
    assert code == 0 and resumed["resumed"] is True, resumed
    assert LiveStore(journal).get(run_id, NAME).cut_seq_id == first_cut.cut_seq_id
    truth = writer.finish()
    code, again = ferry(*argv, capsys=capsys)
    assert code == 0 and again["catch_up"], again
    assert differences(read_target(target, NAME), truth["versions"]) == CLEAN
