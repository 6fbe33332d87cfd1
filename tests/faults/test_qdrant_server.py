"""Cut and slow answers, 429 with Retry-After, 503 bursts, a server that throttles past the
give-up time, and a kill -9 in the index phase, with the Qdrant test server as target:
retried, or given up in one resumable line and then finished; never a hang, never a lost,
duplicated or wrong record, always search-ready at the end."""

from __future__ import annotations

from pathlib import Path

from tests.faults.qdrant_server import run_qdrant_server


def test_a_faulty_qdrant_server_loses_nothing_and_never_hangs(tmp_path: Path, emulator) -> None:  # noqa: ANN001
    outcome = run_qdrant_server(emulator, tmp_path)
    assert outcome.kills >= 9 + 2, outcome.notes  # every rule of the first fired, then 429s
    assert (outcome.lost, outcome.duplicated, outcome.wrong) == (0, 0, 0), outcome.notes
    assert outcome.hangs == 0, outcome.notes
    assert outcome.clean_errors == outcome.errors, outcome.notes
    assert outcome.errors >= 1  # the throttled-past-give-up scenario gave up, then resumed
