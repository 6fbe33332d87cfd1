"""The demo source: real text (the docstrings of the installed Python standard library),
embedded locally and deterministically, so the demo needs no model download and no network.

The embedding is a signed feature-hashing of word unigrams and bigrams into 384 dimensions:
crude next to a neural model, but lexical neighbours really are neighbours, so search and
recall@k in the demo mean something.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DIMENSION = 384
WORD = re.compile(r"[a-z][a-z0-9_]+")
# (collection, metric, which docstrings) — one per Chroma metric.
DEMO_COLLECTIONS = [
    ("stdlib-functions", "cosine", "function"),
    ("stdlib-classes", "l2", "class"),
    ("stdlib-modules", "ip", "module"),
]
MARKER = ".ferry-demo-complete"


@dataclass
class Docstring:
    id: str
    kind: str
    text: str
    metadata: dict[str, Any]


def embed(text: str, dimension: int = DIMENSION) -> np.ndarray:
    """Deterministic text → unit vector (same input, same vector, on every machine)."""
    words = WORD.findall(text.lower())
    features = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    vector = np.zeros(dimension, dtype=np.float32)
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimension
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[index] += sign
    vector = np.sign(vector) * np.log1p(np.abs(vector))
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        vector[0] = 1.0
        return vector
    return vector / norm


def stdlib_docstrings(limit_per_kind: int) -> Iterator[Docstring]:
    """Docstrings parsed (never imported) from the standard library's source files."""
    root = Path(sysconfig.get_paths()["stdlib"])
    counts = {"module": 0, "class": 0, "function": 0}
    seen: set[str] = set()
    files = sorted(
        p for p in root.rglob("*.py") if "test" not in p.parts and "site-packages" not in p.parts
    )
    for path in files:
        if all(v >= limit_per_kind for v in counts.values()):
            return
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        nodes: list[tuple[str, str, Any]] = [("module", module, tree)]
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                nodes.append(("class", f"{module}.{node.name}", node))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                nodes.append(("function", f"{module}.{node.name}:{node.lineno}", node))
        for kind, qualified, node in nodes:
            if counts[kind] >= limit_per_kind:
                continue
            text = ast.get_docstring(node)
            if not text or len(text) < 20:
                continue
            if qualified in seen:  # a class defined twice (e.g. per platform)
                qualified = f"{qualified}:{getattr(node, 'lineno', 0)}"
            if qualified in seen:
                continue
            seen.add(qualified)
            counts[kind] += 1
            yield Docstring(
                id=qualified,
                kind=kind,
                text=text,
                metadata={
                    "module": module,
                    "kind": kind,
                    "lineno": int(getattr(node, "lineno", 0)),
                    "words": len(text.split()),
                    "has_example": ">>>" in text,
                    "private": qualified.rsplit(".", 1)[-1].startswith("_"),
                    "length_kb": round(len(text) / 1024, 3),
                },
            )


def build_demo_source(directory: Path, per_collection: int = 3000) -> list[str]:
    """Create the demo Chroma directory once; a marker file says it is complete."""
    directory = Path(directory)
    if (directory / MARKER).exists():
        return [name for name, _, _ in DEMO_COLLECTIONS]
    import shutil

    import chromadb
    from chromadb.config import Settings

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    client = chromadb.PersistentClient(
        str(directory), settings=Settings(anonymized_telemetry=False)
    )
    limit = client.get_max_batch_size()
    by_kind: dict[str, list[Docstring]] = {"module": [], "class": [], "function": []}
    for doc in stdlib_docstrings(per_collection):
        by_kind[doc.kind].append(doc)
    for name, metric, kind in DEMO_COLLECTIONS:
        collection = client.create_collection(
            name,
            configuration={"hnsw": {"space": metric}},
            metadata={"description": f"Python standard library {kind} docstrings"},
        )
        docs = by_kind[kind]
        for start in range(0, len(docs), limit):
            chunk = docs[start : start + limit]
            vectors = np.stack([embed(d.text) for d in chunk])
            if metric == "l2":
                vectors = vectors * 10.0  # l2 on unnormalised vectors, to be honest about it
            collection.add(
                ids=[d.id for d in chunk],
                embeddings=vectors,
                metadatas=[d.metadata for d in chunk],
                documents=[d.text for d in chunk],
            )
    del client
    (directory / MARKER).write_text("ok\n")
    return [name for name, _, _ in DEMO_COLLECTIONS]


def demo_built(directory: Path) -> bool:
    """Was the demo source built already (its marker is written last)?"""
    return (Path(directory) / MARKER).exists()


def demo_paths(base: Path | None = None) -> tuple[Path, Path]:
    """(demo Chroma source dir, demo Qdrant Edge target dir)."""
    if base is None:
        from platformdirs import user_data_dir

        base = Path(user_data_dir("ferry")) / "demo"
    return base / "chroma", base / "qdrant"
