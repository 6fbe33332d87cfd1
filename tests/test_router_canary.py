"""The router's canary: a share of keyed reads on the target, sticky per key, moved by the
real `ferry router set canary --percent N`; rolled back to 0 % (state file and journal) when
the target breaks a threshold; thresholds judged over the current mode's window only; shadow
overlap judged against exact search, so a better target index is not rolled back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ferry import cli
from ferry.core.journal import Journal
from ferry.core.router import Router, read_state
from ferry.core.router.canary import BUCKETS, bucket, serves_target
from tests.router_apps import Faulty, MemoryStore

DIM = 8


def ferry_router(state: Path, journal: Path, *args: str) -> None:
    argv = ["router", "set", *args, "--state-file", str(state), "--state", str(journal)]
    assert cli.main(argv) == 0


def stores(n: int = 60) -> tuple[MemoryStore, MemoryStore, np.ndarray]:
    primary, secondary = MemoryStore("primary"), MemoryStore("secondary")
    vectors = np.random.default_rng(1).normal(size=(n, DIM)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(n)]
    primary.upsert(ids, vectors)
    secondary.upsert(ids, vectors)
    return primary, secondary, vectors


def test_canary_share_within_two_points_over_10000_keyed_reads_and_sticky(
    tmp_path: Path,
) -> None:
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    primary, secondary, vectors = stores()
    ferry_router(state, journal, "canary", "--percent", "25")
    router = Router(primary, secondary, state, flush_every=20_000)
    sides: dict[str, bool] = {}
    for i in range(10_000):
        before = secondary.queries
        router.query(vectors[i % len(vectors)], k=5, key=f"user-{i}")
        sides[f"user-{i}"] = secondary.queries > before
    share = sum(sides.values()) / len(sides)
    assert abs(share - 0.25) <= 0.02, share
    figures = router.flush_stats()
    assert figures["canary"]["target_reads"] == sum(sides.values())
    assert figures["mode"] == "canary" and figures["canary"]["percent"] == 25

    # Sticky: the same user sees the same side on every read...
    for key in list(sides)[:500]:
        before = secondary.queries
        router.query(vectors[0], k=5, key=key)
        assert (secondary.queries > before) == sides[key], key
    # ...and turning the dial up only adds users: everyone on the target stays there.
    ferry_router(state, journal, "canary", "--percent", "50")
    moved = 0
    for key in list(sides)[:2000]:
        before = secondary.queries
        router.query(vectors[0], k=5, key=key)
        on_target = secondary.queries > before
        assert on_target or not sides[key], key
        moved += on_target and not sides[key]
    assert moved > 300  # a quarter of 2,000 keys more, give or take
    # Unkeyed reads stay on the source.
    before = secondary.queries
    router.query(vectors[0], k=5)
    assert secondary.queries == before

    # Every dial stop holds its share over 10,000 keys (the function the router routes by).
    keys = [f"user-{i}" for i in range(10_000)]
    for percent in (1, 5, 25, 50, 100):
        share = sum(serves_target(k, percent) for k in keys) / len(keys)
        assert abs(share - percent / 100) <= 0.02, (percent, share)
    # The same buckets in another process (no per-process hash salt).
    code = "from ferry.core.router.canary import bucket; print([bucket(f'user-{i}') for i in range(50)])"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(other.stdout) == [bucket(k) for k in keys[:50]]
    assert all(0 <= bucket(k) < BUCKETS for k in keys[:50])

    # Every dial change is journaled, as `canary 25%` → `canary 50%`.
    rows = Journal(journal).cutovers.history()
    assert [(r.from_collection, r.to_collection) for r in rows[:2]] == [
        ("canary 25%", "canary 50%"),
        ("primary-only", "canary 25%"),
    ]
    router.close()


def test_an_error_burst_rolls_the_canary_back_to_zero_with_the_reason_journaled(
    tmp_path: Path,
) -> None:
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    primary, inner, vectors = stores()
    target = Faulty(inner)
    ferry_router(
        state, journal, "canary", "--percent", "50", "--auto-rollback", "--max-error-rate", "0.1"
    )
    router = Router(primary, target, state, journal=journal)
    for i in range(100):  # healthy: no rollback
        router.query(vectors[i % 60], k=5, key=f"u{i}")
    assert read_state(state)["mode"] == "canary" and read_state(state)["percent"] == 50

    target.failing = True  # the burst: every target call fails
    served = 0
    for i in range(200):
        hits = router.query(vectors[i % 60], k=5, key=f"u{i}")
        served += hits.ids[0][0] == f"doc-{i % 60}"  # the app is still answered (by the source)
    assert served == 200
    assert target.failures > 0

    after = read_state(state)
    assert (after["mode"], after["percent"]) == ("canary", 0)
    assert "secondary error rate" in after["reason"]
    assert after["rolled_back"]["from_percent"] == 50
    assert "automatic" in after["history"][-1]["reason"]
    # At 0 % nobody is sent to the target any more.
    calls = target.failures
    for i in range(100):
        router.query(vectors[0], k=5, key=f"u{i}")
    assert target.failures == calls
    automatic = [r for r in Journal(journal).cutovers.history() if r.detail.get("automatic")]
    assert len(automatic) == 1
    row = automatic[0]
    assert (row.from_collection, row.to_collection) == ("canary 50%", "canary 0%")
    assert "secondary error rate" in row.reason
    figures = router.flush_stats()
    assert figures["canary"]["fallbacks"] > 0 and figures["journal_errors"] == 0
    router.close()


def test_thresholds_judge_the_current_mode_only(tmp_path: Path) -> None:
    """Slow mirror writes in dual-write must not roll back a shadow that has not run yet."""
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    primary, inner, vectors = stores()
    target = Faulty(inner)
    ferry_router(state, journal, "dual-write")
    router = Router(primary, target, state, journal=journal)
    target.delay = 0.03
    for i in range(40):
        router.upsert([f"new-{i}"], vectors[i])
    target.delay = 0.0
    assert router.stats()["stores"]["secondary"]["p99_ms"] >= 30  # the slow past is there
    ferry_router(state, journal, "shadow", "--auto-rollback", "--max-p99-ms", "25")
    for i in range(60):
        router.query(vectors[i % 60], k=5)
    router.wait_for_shadows()
    router.query(vectors[0], k=5)
    assert read_state(state)["mode"] == "shadow"  # judged on this window: fast
    window = router.stats()["window"]
    assert window["mode"] == "shadow" and window["stores"]["secondary"]["calls"] >= 60
    assert router.recommendation is None
    router.close()


@pytest.mark.parametrize("healthy", [True, False])
def test_shadow_overlap_is_judged_against_exact_search(tmp_path: Path, healthy: bool) -> None:
    """A target whose index finds more true neighbours than the source's is no reason to roll
    back, although their mutual overlap is low; a target missing half its records is."""
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    vectors = np.random.default_rng(2).normal(size=(400, DIM)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(400)]
    primary = MemoryStore("primary", visible=0.6 if healthy else 1.0, seed=3)
    secondary = MemoryStore("secondary", visible=1.0 if healthy else 0.5, seed=4)
    primary.upsert(ids, vectors)
    secondary.upsert(ids, vectors)
    ferry_router(state, journal, "shadow", "--auto-rollback", "--min-overlap", "0.9")
    router = Router(primary, secondary, state, journal=journal)
    queries = np.random.default_rng(5).normal(size=(80, DIM)).astype(np.float32)
    for q in queries:
        router.query(q, k=10)
    router.wait_for_shadows()
    router.query(queries[0], k=10)  # the check after the last comparison
    figures = router.stats()
    judged = figures["shadow"]["judged"]
    assert figures["shadow"]["overlap_at_k"] < 0.75  # raw overlap alone would roll back
    if healthy:
        assert judged["secondary_vs_exact"] > judged["primary_vs_exact"]
        assert read_state(state)["mode"] == "shadow"
    else:
        assert judged["secondary_vs_exact"] < judged["primary_vs_exact"] - 0.2
        after = read_state(state)
        assert after["mode"] == "primary-only"
        assert "shadow recall@10" in after["reason"] and "below the source" in after["reason"]
        rows = [r for r in Journal(journal).cutovers.history() if "automatic" in (r.reason or "")]
        assert rows and rows[0].to_collection == "primary-only"
    router.close()


def test_bad_percent_is_refused_before_anything_changes(tmp_path: Path, capsys) -> None:
    state, journal = tmp_path / "router.json", tmp_path / "j.sqlite3"
    for args in (["canary"], ["canary", "--percent", "120"], ["shadow", "--percent", "5"]):
        argv = ["router", "set", *args, "--state-file", str(state), "--state", str(journal)]
        assert cli.main(argv) == 2
        assert "percent" in capsys.readouterr().err
    assert not state.exists()
