"""The streamed id → label map: same content as unpickling, bounded memory, nothing executed.

The pickles of real releases (0.4 … 1.5) are covered by tests/test_chroma_releases.py, which
reads every release's directory through this path; here: the shapes those writers produce at
sizes they only reach in big collections (Python's batches of 1000 items, Rust's single
SETITEMS), and the files an attacker would write.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import struct
import sys
import types
from pathlib import Path

import pytest

from ferry.core.connectors.chroma.files import ChromaDirectory
from ferry.core.connectors.chroma.labels import NotFast, build_hash_map
from ferry.core.connectors.chroma.pickle_labels import IdLabelMap, stream_id_to_label
from ferry.core.errors import FerryError

IDS = ["12", "00012", "-5", "ключ", "日本語のID", "x" * 300, "with space", "quote'\""]
N = 2_500  # > 1000: Python's pickler splits each map into several SETITEMS batches


def _maps(n: int) -> dict[str, dict]:
    id_to_label = {rid: k + 1 for k, rid in enumerate(IDS + [f"r{i}" for i in range(n)])}
    return {
        "id_to_label": id_to_label,
        "label_to_id": {v: k for k, v in id_to_label.items()},
        "id_to_seq_id": {k: 3 * v for k, v in id_to_label.items()},
    }


def _python_pickle(n: int) -> bytes:
    """What chromadb 0.4–0.6 writes: a PersistentData object, strings memoised."""
    module = types.ModuleType("chromadb.segment.impl.vector.local_persistent_hnsw")

    class PersistentData:
        pass

    PersistentData.__module__ = module.__name__
    PersistentData.__qualname__ = "PersistentData"
    module.PersistentData = PersistentData  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        data = PersistentData()
        data.__dict__.update(dimensionality=16, total_elements_added=n, max_seq_id=n)
        data.__dict__.update(_maps(n))
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        del sys.modules[module.__name__]


def _rust_pickle(n: int) -> bytes:
    """What chromadb 1.x writes (serde-pickle): a plain dict, no memo, one SETITEMS per map."""

    def text(s: str) -> bytes:
        raw = s.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    def value(v: object) -> bytes:
        if isinstance(v, str):
            return text(v)
        if isinstance(v, int):
            return b"J" + struct.pack("<i", v)
        assert isinstance(v, dict)
        return b"}(" + b"".join(value(k) + value(x) for k, x in v.items()) + b"u"

    top = {"dimensionality": 16, "total_elements_added": n, **_maps(n)}
    return b"\x80\x03" + value(top) + b"."


def _stream(data: bytes) -> tuple[dict[str, int], int]:
    got: dict[str, int] = {}
    chunks = []

    def emit(pairs: list[tuple[str, int]]) -> None:
        chunks.append(len(pairs))
        got.update(pairs)

    summary = stream_id_to_label(io.BytesIO(data), emit)
    assert summary.found and summary.items == len(got)
    assert summary.max_label == max(got.values())
    return got, len(chunks)


@pytest.mark.parametrize("writer", [_python_pickle, _rust_pickle])
def test_stream_equals_unpickled_map(writer) -> None:
    got, _ = _stream(writer(N))
    assert got == _maps(N)["id_to_label"]


def test_stream_hands_over_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ferry.core.connectors.chroma.pickle_labels.INSERT_CHUNK", 100)
    got, chunks = _stream(_rust_pickle(N))
    assert len(got) == N + len(IDS) and chunks == -(-len(got) // 100)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize(
    "data, message",
    [
        (pickle.dumps({"id_to_label": {"a": _Boom()}}), "refusing to load"),
        (pickle.dumps({"id_to_label": {"a": 1.5}}), "unexpected types"),
        (pickle.dumps({"id_to_label": {"a": -1}}), "unexpected types"),
        (pickle.dumps({"id_to_label": {"a": {1, 2}}}), "unsupported pickle opcode"),
    ],
)
def test_refuses_what_is_not_an_index_map(data: bytes, message: str) -> None:
    with pytest.raises(pickle.UnpicklingError, match=message):
        stream_id_to_label(io.BytesIO(data), lambda pairs: None)


def test_label_map_lookups(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(_python_pickle(N))
    labels = IdLabelMap.from_pickle(tmp_path / "p", tmp_path / "m.sqlite3")
    try:
        assert len(labels) == N + len(IDS) and labels.max_label == N + len(IDS)
        assert "ключ" in labels and "nope" not in labels and 5 not in labels
        assert labels.labels(["r0", "12", "r0"]).tolist() == [len(IDS) + 1, 1, len(IDS) + 1]
        with pytest.raises(KeyError, match="nope"):
            labels.labels(["12", "nope"])
    finally:
        labels.close()
    with pytest.raises(KeyError):
        (tmp_path / "q").write_bytes(pickle.dumps({"label_to_id": {1: "a"}}))
        IdLabelMap.from_pickle(tmp_path / "q", tmp_path / "n.sqlite3")


def _release_dir() -> Path | None:
    root = Path.home() / ".cache/ferry-tests/chroma-releases/1.5.9"
    found = sorted(root.glob("data-*/pristine")) if root.is_dir() else []
    return found[0] if found else None


def test_reader_refuses_a_malicious_pickle_and_cleans_up(tmp_path: Path) -> None:
    """A planted pickle is a clear FerryError; the reader's scratch folder goes on close."""
    pristine = _release_dir()
    if pristine is None:
        pytest.skip("release directories not cached (tests/test_chroma_releases.py builds them)")
    copy = tmp_path / "src"
    shutil.copytree(pristine, copy)
    with ChromaDirectory(copy) as reader:
        names = reader.list_collections()
        described = [reader.describe(n) for n in names]
        scratch = Path(reader._scratch.name) if reader._scratch else None
    assert any(d.facts["hnsw_persisted_records"] for d in described)
    assert scratch is not None and not scratch.exists()
    for pickle_file in copy.glob("*/index_metadata.pickle"):
        pickle_file.write_bytes(pickle.dumps({"id_to_label": {"a": _Boom()}}))
    with ChromaDirectory(copy) as reader:
        errors = []
        for name in reader.list_collections():
            try:
                reader.describe(name)
            except FerryError as exc:
                errors.append(str(exc))
    assert errors and all("refusing to load posix.system" in e for e in errors)


@pytest.mark.parametrize("writer", [_python_pickle, _rust_pickle])
def test_hash_map_equals_unpickled_map(writer, tmp_path: Path) -> None:
    """The copy's map (numpy runs of same-length ids, item walk for the rest) gives every
    label the pickle holds, and nothing for an id it does not."""
    (tmp_path / "p").write_bytes(writer(N))
    want = _maps(N)["id_to_label"]
    labels = build_hash_map(tmp_path / "p", tmp_path, "m", len(want))
    try:
        assert len(labels) == len(want) and labels.max_label == max(want.values())
        assert labels.labels(list(want)).tolist() == list(want.values())
        assert "ключ" in labels and "nope" not in labels and "r" not in labels
        with pytest.raises(KeyError, match="nope"):
            labels.labels(["12", "nope"])
    finally:
        labels.close()


def test_hash_map_declines_what_it_cannot_tell_apart(tmp_path: Path) -> None:
    """A repeated key (never in a real dict, possible in a crafted file) is left to the
    exact map; a refused pickle is refused here too."""
    item = b"X\x01\x00\x00\x00aJ\x01\x00\x00\x00"
    repeated = b"\x80\x03}(X\x0b\x00\x00\x00id_to_label}(" + item * 2 + b"uu."
    (tmp_path / "r").write_bytes(repeated)
    with pytest.raises(NotFast):
        build_hash_map(tmp_path / "r", tmp_path, "r", 10)
    (tmp_path / "b").write_bytes(pickle.dumps({"id_to_label": {"a": _Boom()}}))
    with pytest.raises((NotFast, pickle.UnpicklingError)):
        build_hash_map(tmp_path / "b", tmp_path, "b", 10)
