"""`ferry inventory URI`: every collection with its facts and a migration assessment."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ferry.cli.common import add_common, print_json
from ferry.core.inventory import load_inventory


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inventory", help="list collections with their facts")
    parser.add_argument("uri", help="connection URI, e.g. chroma+file:///data/chroma")
    add_common(parser, state=False)
    parser.set_defaults(handler=run)


async def gather_inventory(uri: str) -> dict[str, Any]:
    return (await load_inventory(uri)).to_json()


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
        "collection",
        "count",
        "dim",
        "metric",
        "metadata keys",
        "embedding fn",
        "framework → layout",
        "complexity",
    )
    for c in result["collections"]:
        table.add_row(
            c["name"],
            f"{c['count']:,}",
            str(c["dimension"] or "?"),
            c["metric"] or "?",
            ", ".join(c["metadata_keys"][:6]) + (" …" if len(c["metadata_keys"]) > 6 else ""),
            c["embedding_function"] or "",
            f"{c['framework'] or '-'} → {c['layout']}",
            c["complexity"],
        )
    console.print(table)
    for c in result["collections"]:
        if c["framework"]:
            console.print(f"{c['name']}: {c['layout_reason']}")
    return 0
