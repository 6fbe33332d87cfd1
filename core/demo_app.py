"""The demo's application: after the demo copy has finished it goes on writing to its own
Chroma directory, as a real application does while a migration is being checked — so the
Validation screen has real differences to show, browse and repair.

It runs as a process of its own (`python -m ferry.core.demo_app DIR`), beside Ferry like an
application: Ferry itself never writes to a source. Each round changes five records of
`stdlib-classes` through chromadb's own API — three added, one document edited, one deleted —
so a copy made before it differs by 3 missing, 1 mismatched and 1 extra record.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferry.core.demo import embed

COLLECTION = "stdlib-classes"
ROUNDS_FILE = ".ferry-demo-app-rounds"  # how many rounds wrote (each round's ids are new)


@dataclass(frozen=True)
class DemoAppChanges:
    collection: str
    added: list[str]
    edited: str
    deleted: str

    def line(self) -> str:
        return (
            f"the demo app wrote to its source after the copy: {len(self.added)} added, "
            f"1 edited ({self.edited}), 1 deleted ({self.deleted}) in {self.collection}"
        )


def write_changes(directory: Path) -> DemoAppChanges:
    """One round of an application's writes (chromadb's API, as the app would)."""
    import chromadb
    from chromadb.config import Settings

    directory = Path(directory)
    rounds = directory / ROUNDS_FILE
    round_no = int(rounds.read_text() or 0) + 1 if rounds.exists() else 1
    client = chromadb.PersistentClient(
        str(directory), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_collection(COLLECTION)
    ids = sorted(collection.get(include=[])["ids"])
    edited, deleted = ids[0], ids[-1]
    texts = [
        f"DemoAppNote{round_no}{i}: a class the demo application added while Ferry checked "
        f"the copy (round {round_no}, note {i})."
        for i in range(3)
    ]
    added = [f"demo-app.round{round_no}.note{i}" for i in range(3)]
    collection.add(
        ids=added,
        embeddings=np.stack([embed(t) * 10.0 for t in texts]),  # l2, as the collection
        documents=texts,
        metadatas=[{"kind": "class", "module": "demo_app", "round": round_no} for _ in texts],
    )
    current = collection.get(ids=[edited], include=["documents"])
    document = (current["documents"] or [""])[0] or ""
    edited_text = f"{document} (edited by the demo app)"
    # With its vector: a document alone would make chromadb embed it with its default model,
    # which it downloads.
    collection.update(ids=[edited], documents=[edited_text], embeddings=[embed(edited_text) * 10.0])
    collection.delete(ids=[deleted])
    del client
    rounds.write_text(str(round_no))
    return DemoAppChanges(COLLECTION, added, edited, deleted)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ferry.core.demo_app DEMO_CHROMA_DIR", file=sys.stderr)
        return 2
    print(write_changes(Path(argv[0])).line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
