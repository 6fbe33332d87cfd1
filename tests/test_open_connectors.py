"""The connectors a screen keeps open: one pair shared by every worker, never pulled from
under a worker that still uses it. Opening a connector contacts nothing, so these run on
real connector objects without data."""

from __future__ import annotations

from pathlib import Path

from ferry.tui.open_connectors import OpenConnectors


async def test_one_pair_is_shared_and_never_replaced_while_in_use(tmp_path: Path) -> None:
    source = f"chroma+file://{tmp_path / 'chroma'}"
    first_target = f"qdrant+edge://{tmp_path / 'one'}"
    other_target = f"qdrant+edge://{tmp_path / 'two'}"
    held = OpenConnectors()

    async with held.lease(source, first_target) as first:
        async with held.lease(source, first_target) as again:
            assert again is first  # a second worker gets the same open pair
        async with held.lease(source, other_target) as other:
            assert other is not first  # `first` is in use: this one is a pair of its own
            assert other[1].uri == other_target
        async with held.lease(source, first_target) as still:
            assert still is first

    async with held.lease(source, other_target) as replaced:  # nobody uses `first` now
        assert replaced is not first and replaced[1].uri == other_target
    async with held.lease(source, other_target) as kept:
        assert kept is replaced

    await held.close()
    async with held.lease(source, other_target) as reopened:
        assert reopened is not replaced
    await held.close()
