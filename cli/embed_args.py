"""The `--embed` flags, declared once for `ferry migrate` and `ferry validate`."""

from __future__ import annotations

import argparse

from ferry.core.embed import EmbedSettings
from ferry.core.embed.settings import MISSING_CHOICES


def add_embed_arguments(parser: argparse.ArgumentParser, for_validate: bool = False) -> None:
    group = parser.add_argument_group("re-embedding (docs/re-embedding.md)")
    group.add_argument(
        "--embed",
        metavar="PROVIDER/MODEL",
        default=None,
        help="replace every vector with this model's embedding of the record's document: "
        "openai/<model> (any OpenAI-compatible endpoint), wordllama/l2_supercat, "
        "sentence-transformers/<model>, fastembed/<model> (local models from their cache)",
    )
    group.add_argument(
        "--embed-base-url",
        metavar="URL",
        default=None,
        help="openai/…: the endpoint's /v1 URL (default: $OPENAI_BASE_URL)",
    )
    group.add_argument(
        "--embed-api-key-env",
        metavar="VAR",
        default=None,
        help="openai/…: the environment variable holding the key (default: OPENAI_API_KEY); "
        "the key itself is never written or printed",
    )
    group.add_argument(
        "--embed-dimensions", type=int, default=None, metavar="N", help="shorter vectors"
    )
    if for_validate:
        return
    group.add_argument(
        "--embed-rpm", type=float, default=None, metavar="N", help="requests per minute allowed"
    )
    group.add_argument(
        "--embed-tpm", type=float, default=None, metavar="N", help="tokens per minute allowed"
    )
    group.add_argument(
        "--embed-missing",
        choices=MISSING_CHOICES,
        default="refuse",
        help="records without a document: refuse the run (default, naming them) or skip them",
    )
    group.add_argument(
        "--embed-price",
        type=float,
        default=None,
        metavar="PRICE",
        help="price per million tokens: the plan shows the cost",
    )
    group.add_argument(
        "--embed-batch",
        type=int,
        default=256,
        metavar="N",
        help="most documents in one embedding request",
    )
    group.add_argument(
        "--embed-concurrency",
        type=int,
        default=4,
        metavar="N",
        help="embedding requests in flight",
    )


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
