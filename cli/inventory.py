"""`ferry inventory URI`: every collection with its facts and a migration assessment."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cli.common import add_common, print_json
from core.connectors import open_connector
from core.plan import assess


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inventory", help="list collections with their facts")
    parser.add_argument("uri", help="connection URI, e.g. chroma+file:///data/chroma")
    add_common(parser, state=False)
    parser.set_defaults(handler=run)


async def gather_inventory(uri: str) -> dict[str, Any]:
    connector = open_connector(uri)
    try:
        ping = await connector.ping()
        collections = []
        for name in await connector.list_collections():
            info = await connector.describe(name)
            sample: list[str] = []
            reader = connector.read(name, None, 200)
            try:
                async for batch in reader:
                    sample = list(batch.ids)
                    if not info.metadata_keys:  # engines without a key list: sample them
                        info.metadata_keys = sorted({k for m in batch.metadatas if m for k in m})
                        info.facts["metadata_keys_sampled"] = True
                    break
            finally:
                await reader.aclose()
            plan = assess(info, sample, "qdrant")
            entry = info.to_json()
            entry.update(complexity=plan.complexity, notes=plan.notes, warnings=plan.warnings)
            collections.append(entry)
        result: dict[str, Any] = {
            "uri": uri,
            "kind": connector.kind,
            "version": ping.version,
            "collections": collections,
        }
        schema = getattr(connector, "schema", None)
        if callable(schema):
            state = schema()
            result["schema"] = {
                "summary": state.summary,
                "pending": [list(m) for m in state.pending],
                "newer": [list(m) for m in state.newer],
                "applied": [list(m) for m in state.applied],
            }
        return result
    finally:
        await connector.close()


def run(args: argparse.Namespace) -> int:
    result = asyncio.run(gather_inventory(args.uri))
    if args.json:
        print_json(result)
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{result['uri']}[/] — {result['kind']}, {result['version']}")
    if "schema" in result:
        console.print(f"Chroma on-disk schema: {result['schema']['summary']}")
    table = Table(
        "collection", "count", "dim", "metric", "metadata keys", "embedding fn", "complexity"
    )
    for c in result["collections"]:
        table.add_row(
            c["name"],
            f"{c['count']:,}",
            str(c["dimension"] or "?"),
            c["metric"] or "?",
            ", ".join(c["metadata_keys"][:6]) + (" …" if len(c["metadata_keys"]) > 6 else ""),
            c["embedding_function"] or "",
            c["complexity"],
        )
    console.print(table)
    return 0
