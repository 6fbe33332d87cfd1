"""The secrets canary: a key that a server echoes back must appear nowhere Ferry writes.

A real `chroma run` server sits behind the fault proxy, which answers every upsert with a
400 (or a 500) whose body quotes the request headers — the API key included (chromadb sends
it as `x-chroma-token`). Ferry runs `migrate` (plain and `--debug`), `status`, `status --json`
in processes of their own with every XDG dir and the journal under one root; then every
byte of stdout, stderr and every file under that root is searched for the key.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.faults.kills import ferry
from tests.tcp_proxy import FaultProxy

CANARY = "sk-canary-5e3d9b1c7a2f4e6d8b0a"


def run_canary(server_port: int, root: Path) -> tuple[int, int, list[str]]:
    """(places searched, places where the key was found, where)."""
    from tests.faults.kills import build_source

    source = build_source(root / "src-root", seed=3)
    env = {
        "FERRY_CANARY_KEY": CANARY,
        "FERRY_STATE": str(root / "state" / "journal.sqlite3"),
        "XDG_STATE_HOME": str(root / "xdg-state"),
        "XDG_CONFIG_HOME": str(root / "xdg-config"),
        "XDG_DATA_HOME": str(root / "xdg-data"),
        "XDG_CACHE_HOME": str(root / "xdg-cache"),
        "FERRY_CONFIG": str(root / "xdg-config" / "profiles.toml"),
    }
    outputs: list[tuple[str, str]] = []
    for fault in ("echo400", "echo500"):
        with FaultProxy(server_port, only=b"/upsert") as proxy:
            proxy.from_request = (1, fault)
            target = f"chroma+http://127.0.0.1:{proxy.port}?api_key_env=FERRY_CANARY_KEY&timeout=5"
            for debug in ([], ["--debug"]):
                result = ferry(
                    [
                        "migrate",
                        "--from",
                        f"chroma+file://{source}",
                        "--to",
                        target,
                        "--collection",
                        f"docs=canary-{fault}",  # its own name on the shared server
                        "--give-up-after",
                        "2",
                        "--yes",
                        *debug,
                        *(["--json"] if not debug else []),
                    ],
                    env,
                )
                outputs.append((f"migrate {fault} {debug} stdout", result.stdout))
                outputs.append((f"migrate {fault} {debug} stderr", result.stderr))
                assert proxy.injected.get(fault), "the echo never happened"
    for args in (["status"], ["status", "--json"], ["status", "--all", "--json"]):
        result = ferry(args, env)
        outputs.append((" ".join(args) + " stdout", result.stdout))
        outputs.append((" ".join(args) + " stderr", result.stderr))
    found = [name for name, text in outputs if CANARY in text]
    searched = len(outputs)
    for path in root.rglob("*"):
        if path.is_file() and not path.is_relative_to(root / "src-root"):
            searched += 1
            if CANARY.encode() in path.read_bytes():
                found.append(str(path.relative_to(root)))
    echoed = any("redacted" in text for _name, text in outputs)
    if not echoed:
        found.append("(no redaction seen: did the echo reach Ferry's error text?)")
    return searched, len(found), found


def env_without_canary() -> dict[str, str]:  # pragma: no cover - debugging aid
    return {k: v for k, v in os.environ.items() if CANARY not in v}
