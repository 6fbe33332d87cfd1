"""The demo source: real standard-library text, deterministic local embeddings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from ferry.core.connectors import open_connector
from ferry.core.demo import DEMO_COLLECTIONS, build_demo_source, embed, stdlib_docstrings


def test_embedding_is_deterministic_and_lexical() -> None:
    a = embed("Return the JSON decoding of a string")
    assert np.array_equal(a, embed("Return the JSON decoding of a string"))
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    near = embed("decode a JSON string and return it")
    far = embed("open a TCP socket to the remote host")
    assert float(a @ near) > float(a @ far)


def test_demo_source_holds_real_docstrings_in_three_metrics(tmp_path: Path) -> None:
    names = build_demo_source(tmp_path / "demo", per_collection=60)
    assert names == [name for name, _, _ in DEMO_COLLECTIONS]
    source = open_connector(f"chroma+file://{tmp_path / 'demo'}")

    async def facts() -> dict[str, tuple[int, str]]:
        out = {}
        for name in names:
            info = await source.describe(name)
            out[name] = (info.count, info.metric.value if info.metric else "?")
        return out

    described = asyncio.run(facts())
    assert {m for _, m in described.values()} == {"cosine", "l2", "ip"}
    assert all(count == 60 for count, _ in described.values())
    first = next(stdlib_docstrings(1))
    assert len(first.text) >= 20 and first.metadata["module"]
