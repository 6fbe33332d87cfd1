"""Transient failures are retried (tenacity), counted, and lose or duplicate nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ferry.cli import main
from ferry.core.connectors import open_connector
from tests.conftest import make_chroma, unique_name
from tests.tcp_proxy import DroppingProxy


def test_dropped_connections_mid_migration_are_retried(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = unique_name("flaky")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 400, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    state = tmp_path / "j.sqlite3"
    with DroppingProxy(port, drop={2, 3, 6}, only=b"/upsert") as proxy:
        code = main(
            [
                "migrate",
                "--from",
                f"chroma+file://{src}",
                "--to",
                f"chroma+http://127.0.0.1:{proxy.port}",
                "--collection",
                name,
                "--batch-size",
                "40",
                "--yes",
                "--json",
                "--state",
                str(state),
            ]
        )
        # Usually 3; a request line split across TCP reads is not counted (and not dropped).
        assert proxy.dropped >= 2
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["collections"][0]["records_written"] == 400
    with sqlite3.connect(state) as db:
        retries = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'retry'").fetchone()[0]
    assert retries >= proxy.dropped
    assert asyncio.run(open_connector(chroma_server).count(name)) == 400


async def test_retries_run_out_the_collection_fails_cleanly(
    tmp_path: Path, chroma_server: str
) -> None:
    """Every write dropped: retries run out, the collection fails with a reason, nothing hangs."""
    from ferry.core.engine import MigrationOptions
    from ferry.core.journal import Journal
    from ferry.core.runner import migrate

    name = unique_name("down")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 300, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    with DroppingProxy(port, drop=set(range(1, 10_000)), only=b"/upsert") as proxy:
        outcome = await migrate(
            f"chroma+file://{src}",
            f"chroma+http://127.0.0.1:{proxy.port}",
            [name],
            MigrationOptions(batch_size=50, max_attempts=2, retry_initial=0.01, retry_max=0.02),
            Journal(tmp_path / "j.sqlite3"),
        )
    assert outcome.status == "failed"
    result = outcome.collections[0]
    assert result.status == "failed" and result.records_written == 0
    assert result.error and "Chroma did not answer upsert" in result.error


# -- a throttling Chroma server (issue 16, item 2): 429/503 are waited out, not failures ---------
def _migrate_through(
    proxy_port: int, src: Path, name: str, state: Path, *extra: str
) -> tuple[int, dict, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "migrate",
                "--from",
                f"chroma+file://{src}",
                "--to",
                f"chroma+http://127.0.0.1:{proxy_port}",
                "--collection",
                name,
                "--batch-size",
                "50",
                "--yes",
                "--json",
                "--state",
                str(state),
                *extra,
            ]
        )
    try:
        report = json.loads(out.getvalue())
    except ValueError:
        report = {}
    return code, report, out.getvalue() + err.getvalue()


def test_six_429s_with_retry_after_are_waited_out_and_counted(
    tmp_path: Path, chroma_server: str
) -> None:
    from tests.tcp_proxy import FaultProxy

    name = unique_name("rate-limited")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 200, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    with FaultProxy(port, only=b"/upsert") as proxy:
        proxy.schedule = dict.fromkeys(range(2, 8), "throttle429")  # six in a row
        proxy.retry_after = "2"
        code, report, words = _migrate_through(
            proxy.port, src, name, tmp_path / "j.sqlite3", "--workers", "1"
        )
    assert code == 0, words
    assert proxy.injected == {"throttle429": 6}
    assert report["retries"] >= 6
    assert report["collections"][0]["records_written"] == 200
    gaps = [b - a for a, b in zip(proxy.answered_at, proxy.answered_at[1:], strict=False)]
    assert min(gaps) >= 1.9, gaps  # Retry-After: 2 honoured (the policy's own wait is 0.2 s)
    assert asyncio.run(open_connector(chroma_server).count(name)) == 200


def test_a_burst_of_503s_is_waited_out_with_the_policy_s_backoff(
    tmp_path: Path, chroma_server: str
) -> None:
    from tests.tcp_proxy import FaultProxy

    name = unique_name("shedding")
    src = make_chroma(tmp_path / "src", {name: {"metric": "cosine", "n": 150, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    with FaultProxy(port, only=b"/upsert") as proxy:
        proxy.schedule = dict.fromkeys(range(1, 9), "busy503")  # more than --max-attempts
        proxy.retry_after = None
        code, report, words = _migrate_through(proxy.port, src, name, tmp_path / "j.sqlite3")
    assert code == 0, words
    assert proxy.injected == {"busy503": 8}
    assert report["retries"] >= 8
    assert asyncio.run(open_connector(chroma_server).count(name)) == 150


def test_a_server_that_always_answers_429_is_reported_as_throttled_not_unreachable(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.tcp_proxy import FaultProxy

    name = unique_name("always-throttled")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 50, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    state = tmp_path / "j.sqlite3"
    with FaultProxy(port) as proxy:  # every request, the first contact included
        proxy.from_request = (1, "throttle429")
        proxy.retry_after = "1"
        code, report, words = _migrate_through(proxy.port, src, name, state, "--give-up-after", "3")
    assert code in {1, 2}, words
    assert "throttled" in words and "429" in words, words
    assert "cannot reach" not in words and "chroma run" not in words
    assert 2 <= proxy.injected["throttle429"] <= 10  # waited ~1 s apart, then gave up
    if report.get("collections"):  # got as far as a run: `ferry status` says it too
        assert main(["status", "--json", "--state", str(state)]) in {0, 1}
        assert "throttled" in capsys.readouterr().out


def test_status_shows_a_run_waiting_on_a_throttling_server_as_throttled(
    tmp_path: Path, chroma_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """While the server answers 429, `ferry status` (and the Monitor, from the same view) say
    *throttled*; when it stops, the run carries on and completes."""
    import os
    import subprocess
    import sys

    from ferry.core.journal import Journal
    from ferry.core.runs import recent_runs
    from tests.conftest import ROOT, wait_until
    from tests.tcp_proxy import FaultProxy

    name = unique_name("waiting")
    src = make_chroma(tmp_path / "src", {name: {"metric": "l2", "n": 100, "dim": 8}})
    port = urlsplit(chroma_server.replace("chroma+", "")).port
    assert port
    state = tmp_path / "j.sqlite3"
    with FaultProxy(port, only=b"/upsert") as proxy:
        proxy.from_request = (1, "throttle429")
        proxy.retry_after = "1"
        command = [sys.executable, "-m", "ferry.cli", "migrate", "--from", f"chroma+file://{src}"]
        command += ["--to", f"chroma+http://127.0.0.1:{proxy.port}", "--collection", name]
        command += ["--yes", "--state", str(state), "--give-up-after", "120"]
        process = subprocess.Popen(
            command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, text=True
        )
        try:

            def throttled() -> bool:
                if not state.exists():
                    return False
                journal = Journal(state)
                try:
                    runs = recent_runs(journal, 1)
                    return bool(runs) and any(c.throttled for c in runs[0].collections)
                finally:
                    journal.close()

            wait_until(throttled, timeout=120, interval=0.2)
            assert main(["status", "--state", str(state)]) == 0
            assert f"{name:<24} throttled" in capsys.readouterr().out
            proxy.heal()
            out, _ = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, out
    assert main(["status", "--json", "--state", str(state)]) == 0
    shown = json.loads(capsys.readouterr().out)
    collection = (
        shown["collections"][0] if "collections" in shown else shown["runs"][0]["collections"][0]
    )
    assert collection["status"] == "completed" and collection["retries"] >= 1
    assert collection["throttled"] is False


def test_retry_after_in_seconds_or_an_http_date_is_found_in_every_client_s_exception() -> None:
    import email.utils
    import time

    import httpx
    from qdrant_client.common.client_exceptions import QdrantException, ResourceExhaustedResponse

    from ferry.core.errors import TransientError, classify, parse_retry_after

    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # past: no wait

    # qdrant-client: seconds arrive parsed; an HTTP date makes it raise its own complaint.
    found = classify(ResourceExhaustedResponse("slow down", 3), "upsert", "q", "Qdrant")
    assert isinstance(found, TransientError) and found.throttled and found.retry_after == 3.0
    complaint = QdrantException(f"Retry-After header value is not a valid integer: {later}")
    found = classify(complaint, "upsert", "q", "Qdrant")
    assert found.throttled and 25 <= (found.retry_after or 0) <= 31

    # chromadb: the status only in the chain (Exception(text) raised while handling httpx's).
    request = httpx.Request("POST", "http://h/api/v2/upsert")
    answer = httpx.Response(429, headers={"Retry-After": "2"}, request=request)
    try:
        try:
            answer.raise_for_status()
        except httpx.HTTPStatusError:
            raise ValueError("Could not connect to tenant default_tenant")  # noqa: B904
    except ValueError as wrapped:
        found = classify(wrapped, "connect", "c", "Chroma")
    assert found.throttled and found.retry_after == 2.0 and "throttled" in found.what


async def test_a_throttled_call_waits_as_asked_beyond_the_attempts_within_the_give_up_time() -> (
    None
):
    from ferry.core.errors import TransientError
    from ferry.core.retry import RetryPolicy

    calls: list[int] = []

    async def busy_then_fine() -> str:
        calls.append(1)
        if len(calls) <= 5:
            raise TransientError("throttled: 429", throttled=True, retry_after=0.01)
        return "done"

    waits: list[float] = []
    policy = RetryPolicy(max_attempts=2, initial=5.0, give_up_after=60)
    assert await policy.call(busy_then_fine, lambda n: waits.append(n.delay)) == "done"
    assert waits == [0.01] * 5  # Retry-After, not the 5 s backoff; 5 throttles > 2 attempts

    async def far_off() -> str:
        raise TransientError("throttled: 429", throttled=True, retry_after=3600)

    with pytest.raises(TransientError):  # a wait past the give-up time is not started
        await RetryPolicy(give_up_after=30).call(far_off, lambda n: waits.append(n.delay))
    assert waits == [0.01] * 5
