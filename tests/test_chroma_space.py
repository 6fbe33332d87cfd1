"""The space Chroma searches with, resolved the way each release does (core/connectors/chroma/space).

The stored shapes below are what the real releases wrote (recorded from chromadb 0.4.24, 0.6.3,
1.0.12 and 1.5.9 runs); directories written by those releases themselves are exercised in
tests/test_chroma_releases.py.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest

from ferry.core.connectors.chroma.files import ChromaDirectory
from ferry.core.connectors.chroma.space import resolve
from ferry.core.errors import FerryError
from ferry.core.model import Metric

LEGACY_06 = {  # 0.5.4–0.6.3 write this default whatever the metadata says
    "hnsw_configuration": {
        "space": "l2",
        "ef_construction": 100,
        "ef_search": 100,
        "num_threads": 2,
        "M": 16,
        "resize_factor": 1.2,
        "batch_size": 100,
        "sync_threshold": 1000,
        "_type": "HNSWConfigurationInternal",
    },
    "_type": "CollectionConfigurationInternal",
}


def new_shape(space: str, **hnsw: Any) -> str:
    body = {
        "space": space,
        "ef_construction": 100,
        "ef_search": 100,
        "max_neighbors": 16,
        "resize_factor": 1.2,
        "sync_threshold": 1000,
    }
    body.update(hnsw)
    return json.dumps({"vector_index": {"hnsw": body}, "embedding_function": None})


def schema(space: str) -> str:
    hnsw = {"ef_construction": 100, "max_neighbors": 16, "ef_search": 100, "num_threads": 2}
    index = {"enabled": True, "config": {"space": space, "hnsw": hnsw}}
    return json.dumps({"keys": {"#embedding": {"float_list": {"vector_index": index}}}})


V04 = {"sysdb": 4, "metadb": 3, "embeddings_queue": 1}
V06 = {"sysdb": 9, "metadb": 4, "embeddings_queue": 2}
V10 = {"sysdb": 9, "metadb": 5, "embeddings_queue": 2}
V15 = {"sysdb": 10, "metadb": 6, "embeddings_queue": 2}

CASES = [
    # (what, migrations, config_json_str, schema_str, segment md, collection md, space, M, ef_search)
    (
        "0.4 metadata cosine, metadata later modified",
        V04,
        None,
        None,
        {"hnsw:space": "cosine", "hnsw:M": 32},
        {"note": "x"},
        "cosine",
        32,
        10,
    ),
    (
        "0.6 metadata cosine under a default l2 config",
        V06,
        json.dumps(LEGACY_06),
        None,
        {"hnsw:space": "cosine"},
        {"hnsw:space": "cosine"},
        "cosine",
        16,
        10,
    ),
    ("0.6 metadata ip", V06, json.dumps(LEGACY_06), None, {"hnsw:space": "ip"}, {}, "ip", 16, 10),
    (
        "0.6 configuration API ip: ignored by 0.6's segments",
        V06,
        json.dumps(
            {**LEGACY_06, "hnsw_configuration": {**LEGACY_06["hnsw_configuration"], "space": "ip"}}
        ),
        None,
        {},
        {},
        "l2",
        16,
        10,
    ),
    (
        "0.6 directory opened by 1.5",
        V15,
        json.dumps(LEGACY_06),
        None,
        {"hnsw:space": "cosine", "hnsw:search_ef": 40},
        {},
        "cosine",
        16,
        40,
    ),
    (
        "0.6 directory opened by 1.5, no search_ef",
        V15,
        json.dumps(LEGACY_06),
        None,
        {"hnsw:space": "ip"},
        {},
        "ip",
        16,
        100,
    ),
    (
        "1.0 metadata folded into the config",
        V10,
        new_shape("cosine", max_neighbors=32),
        None,
        {},
        {"hnsw:space": "cosine", "hnsw:M": 32},
        "cosine",
        32,
        100,
    ),
    ("1.0 configuration API ip", V10, new_shape("ip"), None, {}, {}, "ip", 16, 100),
    ("1.0 default config", V10, new_shape("l2"), None, {}, {}, "l2", 16, 100),
    ("1.5 schema cosine", V15, "{}", schema("cosine"), {}, {}, "cosine", 16, 100),
    ("1.5 schema ip", V15, "{}", schema("ip"), {}, {"hnsw:space": "ip"}, "ip", 16, 100),
    ("0.4 directory never opened by 0.5+", V04, None, None, {}, {}, "l2", 16, 10),
]


@pytest.mark.parametrize(
    ("migrations", "config", "schema_str", "segment", "collection", "space", "m", "ef"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_space_as_the_release_searches(
    migrations: dict[str, int],
    config: str | None,
    schema_str: str | None,
    segment: dict[str, Any],
    collection: dict[str, Any],
    space: str,
    m: int,
    ef: int,
) -> None:
    settings = resolve(migrations, config, schema_str, segment, collection, "here")
    assert (settings.metric, settings.m, settings.ef_search) == (Metric(space), m, ef)


def test_collection_metadata_that_lies_is_noted() -> None:
    settings = resolve(
        V06, json.dumps(LEGACY_06), None, {"hnsw:space": "cosine"}, {"hnsw:space": "ip"}, "here"
    )
    assert settings.metric is Metric.COSINE
    assert any("hnsw:space=ip" in n for n in settings.notes)


@pytest.mark.parametrize(
    ("config", "segment", "message"),
    [
        # a 1.x modify(configuration=…) of a 0.x cosine collection: chroma now searches it as l2
        (new_shape("l2", ef_search=50), {"hnsw:space": "cosine"}, "built as cosine"),
        (json.dumps({"vector_index": {"spann": {"space": "cosine"}}}), {}, "SPANN"),
        (json.dumps(LEGACY_06), {"hnsw:space": "cosine", "hnsw:colour": "red"}, "unknown HNSW"),
        # chroma 1.0.0–1.0.5 stored num_threads: the answer depends on the machine's cores
        (new_shape("l2", num_threads=2), {"hnsw:space": "cosine"}, "core count"),
        (json.dumps(LEGACY_06), {"hnsw:space": "manhattan"}, "unknown distance space"),
    ],
    ids=["reconfigured-legacy", "spann", "unknown-key", "num-threads", "bad-space"],
)
def test_unresolvable_settings_are_refused(
    config: str, segment: dict[str, Any], message: str
) -> None:
    with pytest.raises(FerryError, match=message):
        resolve(V15, config, None, segment, {}, "here")


def test_an_index_built_as_cosine_but_labelled_l2_is_refused(tmp_path: Path) -> None:
    """The stored vectors are the last word: normalised rows with their norms in length.bin
    are a cosine index, whatever the (here deliberately falsified) settings say."""
    written = tmp_path / "written"
    client = chromadb.PersistentClient(str(written))
    collection = client.create_collection("docs", configuration={"hnsw": {"space": "cosine"}})
    rng = np.random.default_rng(1)
    collection.add(
        ids=[f"d{i}" for i in range(1500)],
        embeddings=(rng.normal(size=(1500, 8)) * 5).astype(np.float32),
    )
    del client
    forged = tmp_path / "forged"
    shutil.copytree(written, forged)
    db = sqlite3.connect(forged / "chroma.sqlite3")
    db.execute("UPDATE collections SET schema_str = replace(schema_str, 'cosine', 'l2')")
    db.commit()
    db.close()
    with ChromaDirectory(written) as directory:
        assert directory.describe("docs").metric is Metric.COSINE
    with ChromaDirectory(forged) as directory, pytest.raises(FerryError, match="built as cosine"):
        directory.describe("docs")
