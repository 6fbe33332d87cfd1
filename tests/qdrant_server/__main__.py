"""Run the emulator: python -m tests.qdrant_server --port P --data DIR [--indexing-threshold-kb N]."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from tests.qdrant_server.app import build
from tests.qdrant_server.convert import DEFAULT_INDEXING_KB


def emulated_version() -> str:
    """The installed qdrant-client's major.minor: its compatibility check then stays quiet."""
    from importlib.metadata import version

    major, minor = version("qdrant-client").split(".")[:2]
    return f"{major}.{minor}.0"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.qdrant_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--indexing-threshold-kb", type=int, default=DEFAULT_INDEXING_KB)
    args = parser.parse_args()
    app = build(args.data, emulated_version(), args.indexing_threshold_kb)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
