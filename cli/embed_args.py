"""The `--embed` flags, declared once for `ferry migrate` and `ferry validate`."""

from __future__ import annotations

import argparse

from ferry.cli.option_args import add_options
from ferry.core.embed import EmbedSettings
from ferry.core.options import EMBED_GROUP, migrate_options


def add_embed_arguments(parser: argparse.ArgumentParser, for_validate: bool = False) -> None:
    group = parser.add_argument_group(EMBED_GROUP)
    options = list(migrate_options(group=EMBED_GROUP))
    add_options(group, [o for o in options if o.in_validate or not for_validate])


def embed_settings_from(args: argparse.Namespace) -> EmbedSettings | None:
    """The settings the flags ask for (None without `--embed`); refused in one line."""
    from ferry.cli.common import check_number

    model = getattr(args, "embed", None)
    if not model:
        return None
    check_number("--embed-dimensions", args.embed_dimensions, least=1, most=65_536, example="256")
    batch = getattr(args, "embed_batch", 256)
    concurrency = getattr(args, "embed_concurrency", 4)
    check_number("--embed-batch", batch, least=1, most=2048, example="256")
    check_number("--embed-concurrency", concurrency, least=1, most=64, example="4")
    for flag in ("rpm", "tpm", "price"):
        value = getattr(args, f"embed_{flag}", None)
        check_number(f"--embed-{flag}", value, positive=flag != "price", example="3000")
    settings = EmbedSettings(
        model=model,
        base_url=args.embed_base_url,
        api_key_env=args.embed_api_key_env,
        dimensions=args.embed_dimensions,
        rpm=getattr(args, "embed_rpm", None),
        tpm=getattr(args, "embed_tpm", None),
        missing=getattr(args, "embed_missing", "refuse"),
        price=getattr(args, "embed_price", None),
        batch_texts=batch,
        concurrency=concurrency,
    )
    settings.check()
    return settings
