"""`python -m tests.faults.report`: run the whole fault suite and rewrite docs/reliability.md.

Runs the seeded kill -9 schedule (`FERRY_FAULT_KILLS`, default 20; `FERRY_FAULT_SEED`), the
network faults and the secrets canary against a real `chroma run` server started here, and
the bad-input table; then writes the table the README quotes. Nothing in it is typed by hand.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.bad_inputs import build_world, nan_verdict, run_table
from tests.faults.canary import run_canary
from tests.faults.kills import Outcome, run_schedule
from tests.faults.network import run_network
from tests.faults.together import (
    backup_during_migrate,
    kill_into_chroma_server,
    large_records,
    many_empty_collections,
    tui_and_cli_resume_at_once,
    two_repairs_at_once,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"


def chroma_server(data: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    process = subprocess.Popen(
        [chroma, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("chroma run did not start")


def main() -> None:
    kills = int(os.environ.get("FERRY_FAULT_KILLS", "20"))
    seed = int(os.environ.get("FERRY_FAULT_SEED", "13"))
    started = time.monotonic()
    rows: list[tuple[str, str, int, int, int, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="ferry-report-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("XDG_STATE_HOME", str(root / "xdg-state"))
        for outcome in run_schedule(kills, seed, root / "kills"):
            rows.append(_row(outcome, f"{outcome.kills} kills in {outcome.runs} runs"))
        server, port = chroma_server(root / "chroma-db")
        try:
            (root / "net").mkdir()
            for outcome in run_network(port, root / "net"):
                rows.append(_row(outcome, f"{outcome.kills} faults in {outcome.runs} runs"))
            (root / "canary").mkdir()
            searched, leaks, _where = run_canary(port, root / "canary")
            rows.append(
                (
                    "API key echoed by the server (400, 500, --debug)",
                    f"{searched} outputs/files",
                    0,
                    0,
                    leaks,
                    0,
                    f"{searched - leaks}/{searched} without the key",
                )
            )
            (root / "kchroma").mkdir()
            outcome = kill_into_chroma_server(root / "kchroma", f"chroma+http://127.0.0.1:{port}")
            rows.append(_row(outcome, f"{outcome.kills} kills in {outcome.runs} runs"))
        finally:
            server.terminate()
            server.wait(10)
        for scenario in (
            two_repairs_at_once,
            backup_during_migrate,
            tui_and_cli_resume_at_once,
            many_empty_collections,
        ):
            (root / scenario.__name__).mkdir()
            outcome = scenario(root / scenario.__name__)
            rows.append(_row(outcome, f"{outcome.runs} runs"))
        (root / "large").mkdir()
        outcome, peaks = large_records(root / "large")
        peak_words = f"peak RSS {peaks['bounded']:.0f} MB at --batch-mb 4, {peaks['unbounded']:.0f} MB unbounded"
        rows.append(_row(outcome, f"{outcome.runs} runs; {peak_words}"))
        from tests.faults.qdrant_server import run_qdrant_server
        from tests.qdrant_server import running_emulator

        with running_emulator(root / "qdrant-emulator") as emulator:
            (root / "qnet").mkdir()
            outcome = run_qdrant_server(emulator, root / "qnet")
            rows.append(_row(outcome, f"{outcome.kills} faults in {outcome.runs} runs"))
        (root / "bad").mkdir()
        world = build_world(root / "bad")
        verdicts = [*run_table(world), nan_verdict(world)]
        good = sum(
            1
            for v in verdicts
            if v.clean and v.unchanged and (v.code == 2 or v.what.startswith("NaN"))
        )
        rows.append(
            (
                "bad input, every command (exit 2, one line, nothing written)",
                f"{len(verdicts)} inputs",
                0,
                0,
                len(verdicts) - good,
                0,
                f"{good}/{len(verdicts)}",
            )
        )
    DOC.parent.mkdir(exist_ok=True)
    text = render(rows, kills, seed, time.monotonic() - started)
    DOC.write_text(text, encoding="utf-8")
    quote_in_readme(text)
    print(text)


def quote_in_readme(text: str) -> None:
    """Put the table (only the table) between the README's reliability markers."""
    readme = ROOT / "README.md"
    content = readme.read_text(encoding="utf-8")
    start, end = "<!-- reliability-table -->", "<!-- /reliability-table -->"
    if start not in content or end not in content:
        return
    table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    head, _, rest = content.partition(start)
    _, _, tail = rest.partition(end)
    readme.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


def _row(outcome: Outcome, tried: str) -> tuple[str, str, int, int, int, int, str]:
    clean = f"{outcome.clean_errors}/{outcome.errors}" if outcome.errors else "no errors"
    return (
        outcome.scenario,
        tried,
        outcome.lost,
        outcome.duplicated,
        outcome.wrong + outcome.source_changed,
        outcome.hangs,
        clean,
    )


def render(
    rows: list[tuple[str, str, int, int, int, int, str]], kills: int, seed: int, seconds: float
) -> str:
    lines = [
        "# Reliability",
        "",
        "Generated by `python -m tests.faults.report` (the same code as `tests/faults/`, which",
        "CI runs); do not edit by hand. "
        f"Kill schedule: {kills} kills, seed {seed} (`FERRY_FAULT_KILLS`, `FERRY_FAULT_SEED`); "
        f"{platform.python_implementation()} {platform.python_version()}, {seconds:.0f} s.",
        "",
        "| what was tried | how often | lost | duplicated | wrong | hangs | clean errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for what, tried, lost, dup, wrong, hangs, clean in rows:
        lines.append(f"| {what} | {tried} | {lost} | {dup} | {wrong} | {hangs} | {clean} |")
    lines += [
        "",
        "- **lost / duplicated / wrong**: the target read with `qdrant_edge` (or chromadb's",
        "  client) compared record by record with the source read by chromadb's own `get()` on a",
        "  copy; *wrong* also counts a changed source checksum, a cutover whose alias file and",
        "  journal disagree, a collection not `completed` and search-ready (all vectors",
        "  indexed) after the final run, and a leaked key (canary row).",
        "- **kill -9**: `FERRY_KILL_AT=point:N` (core/faultpoints.py) kills the process at an",
        "  exact point — a batch read, written, a checkpoint before/after its commit, the index",
        "  phase (copy durable, index not built), a repair write, a cutover between backup and",
        "  switch or switch and journal — then the same command runs again.",
        "- **network**: a TCP proxy in front of a real `chroma run` resets requests, accepts and",
        "  never answers, trickles bytes, or refuses connections; Ferry retries with one policy,",
        "  or gives up within `--give-up-after` plus one request timeout and says the run is",
        "  resumable; the same command then finishes it.",
        "- **Qdrant server**: the Qdrant test server (tests/qdrant_server, Qdrant Edge behind",
        "  Qdrant's REST API) cuts answers, answers slower than the timeout, 429 with",
        "  `Retry-After`, 503 while copying and indexing, or throttles past the give-up time;",
        "  or is killed (-9) in the index phase; the copy is read back with qdrant-client alone",
        "  and must be search-ready.",
        "- **together**: two `validate --repair` of one target at once, `ferry backup` of a",
        "  collection a migration is writing (the backup holds only whole, right records), a",
        "  thousand empty collections (each created, or skipped saying why), and 1 MB documents",
        "  with 3,072-d vectors read in 1,000-record batches (peak RSS of the real process).",
        "- **clean errors**: every failure was one `ferry: error:` line (no traceback).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
