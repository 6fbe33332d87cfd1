"""Start a migration as a process of its own, so it outlives the terminal that asked for it.

A dropped SSH connection sends SIGHUP to every process of the terminal's session. The TUI
therefore never runs the engine in-process: it starts ``python -m ferry.cli migrate …`` in a new
session (``start_new_session=True``: no controlling terminal, so no hang-up reaches it), with
stdin closed and output going to a log file beside the journal, and then *attaches* to it
through the journal like any other viewer. The same command again resumes the same run
(``ferry.core.plan.run_key``), which is how an interrupted run is resumed from its watermark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ferry.core.journal import Journal
from ferry.core.runs import RunView
from ferry.core.targets import TargetNames

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Launched:
    """A migration process we started: its pid, its log and the exact command."""

    pid: int
    argv: list[str]
    log_path: Path
    started_at: float
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def exited(self) -> int | None:
        """The exit code once the process ended (reaping it, so it is no zombie), else None."""
        return self.process.poll() if self.process else None


def migrate_argv(
    source_uri: str,
    target_uri: str,
    collections: list[str],
    state_path: Path,
    extra: list[str] | None = None,
) -> list[str]:
    """The headless command the detached process runs: the same one a user could type."""
    argv = [sys.executable, "-m", "ferry.cli", "migrate", "--from", source_uri, "--to", target_uri]
    for name in collections:
        argv += ["--collection", name]
    return argv + [*(extra or []), "--yes", "--json", "--log", "--state", str(state_path)]


def launch(
    source_uri: str,
    target_uri: str,
    collections: list[str],
    state_path: Path,
    extra: list[str] | None = None,
) -> Launched:
    """Start the migration detached (new session, no stdin, output to a log); return at once."""
    state_path = Path(state_path)
    logs = logs_dir(state_path)
    logs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    log_path = logs / f"migrate-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    argv = migrate_argv(source_uri, target_uri, collections, state_path, extra)
    env = dict(os.environ)
    # `python -m ferry.cli` must find this Ferry even when launched from another directory.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    with open(log_path, "ab") as log:
        os.chmod(log_path, 0o600)
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    return Launched(process.pid, argv, log_path, started, process)


def logs_dir(state_path: Path) -> Path:
    """Where detached runs write their output: `logs/` beside the journal."""
    return Path(state_path).parent / "logs"


def name_log(launched: Launched, run_id: str) -> Launched:
    """Rename the launched process's log after the run it claimed (`<run_id>-<pid>.log`),
    so any viewer, in any later session, finds a run's logs by its id. The process keeps
    writing to the same file: a rename does not touch an open descriptor."""
    named = launched.log_path.with_name(f"{run_id}-{launched.pid}.log")
    try:
        launched.log_path.rename(named)
    except OSError:
        return launched  # still readable under its first name
    return replace(launched, log_path=named)


def run_logs(state_path: Path, run_id: str) -> list[Path]:
    """Every log of a run, oldest first (one per process: a resume adds one)."""
    folder = logs_dir(state_path)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{run_id}-*.log"), key=lambda p: (p.stat().st_mtime, p.name))


def relaunch_argv_extra(run: RunView) -> list[str]:
    """The options of a journaled run as `ferry migrate` flags, so relaunching resumes it."""
    options, mapping = run.options, run.mapping
    extra: list[str] = []
    if options.get("batch_size"):
        extra += ["--batch-size", str(options["batch_size"])]
    if options.get("workers"):
        extra += ["--workers", str(options["workers"])]
    if options.get("rate"):
        extra += ["--rate", str(options["rate"])]
    if options.get("mode"):
        extra += ["--mode", str(options["mode"])]
    if options.get("layout"):
        extra += ["--layout", str(options["layout"])]
    if mapping.get("source_id"):
        extra += ["--id-field", str(mapping["source_id"])]
    if mapping.get("document"):
        extra += ["--document-field", str(mapping["document"])]
    if options.get("targets"):  # the same pairs, or it would be another run
        extra += TargetNames.from_json(options["targets"]).argv(run.requested)
    if options.get("embed"):  # the same model and settings (the key stays in its variable)
        from ferry.core.embed.settings import EmbedSettings

        extra += EmbedSettings.from_json(options["embed"]).argv()
    return extra


def resume(run: RunView, state_path: Path) -> Launched:
    """Relaunch an interrupted or cancelled run: same arguments, same run key, same run."""
    return launch(
        run.source_uri, run.target_uri, list(run.requested), state_path, relaunch_argv_extra(run)
    )


def find_launched_run(
    journal: Journal,
    launched: Launched,
    attempts: int = 200,
    interval: float = 0.05,
) -> str | None:
    """The run id the launched process claimed, or None if it exited or never claimed one.

    The engine process writes its own pid into the run row (`runs.create`, `runs.claim`), so the
    row whose pid is the child's is ours. Bounded: at most `attempts` polls of the journal.
    """
    for _ in range(attempts):
        for run in journal.runs.recent(20):
            if run.pid == launched.pid and run.updated_at >= launched.started_at - 1:
                return run.run_id
        if launched.exited() is not None:
            # One last look: it may have claimed the run and finished between two polls.
            for run in journal.runs.recent(20):
                if run.pid == launched.pid:
                    return run.run_id
            return None
        time.sleep(interval)  # polling another process's journal: there is nothing to await
    return None


def launch_failure(launched: Launched, lines: int = 5) -> str:
    """The last lines of a launched process's log: why it stopped before claiming a run."""
    try:
        text = launched.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "the migration process exited"
    tail = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " ".join(tail) or "the migration process exited"
