"""The emulator's optimizer: open one shard with its (possibly new) config and optimize it.

A process of its own because Qdrant Edge's `optimize()` holds the GIL for the whole build.
Usage: python -m tests.qdrant_server.optimize SHARD_DIR SETTINGS_JSON
"""

from __future__ import annotations

import json
import sys

import qdrant_edge as qe

from tests.qdrant_server.shard_config import edge_config


def main() -> None:
    shard_dir, settings = sys.argv[1], json.loads(sys.argv[2])
    shard = qe.EdgeShard.load(shard_dir, edge_config(settings))
    try:
        shard.optimize()
        shard.flush()
    finally:
        shard.close()


if __name__ == "__main__":
    main()
