"""`tg replay FILE`: recorded candles through the whole trade cycle, then a report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import collector
from cli.exit_codes import ExitCode
from cli.options import ConfigOption, DbOption, JsonOption, reports_errors, settings_from

if TYPE_CHECKING:
    from core.domain.config import Settings
    from core.flows.candles import CandleSeries
    from core.flows.replay import ReplayMarket
    from simulator.embedded import EmbeddedExchange
    from simulator.pairs import Pair


def replays_folder(db_path: Path) -> Path:
    """Each replay's own database lives beside tg's, in one folder."""
    return db_path.with_name(f"{db_path.stem}.replays")


def replay_sandbox(settings: Settings) -> Callable[[ReplayMarket], EmbeddedExchange]:
    """A fresh embedded exchange whose market for the replayed pair is the recording
    (the other pairs keep the seeded market), at the configured rate-limit tier."""
    from cli.wiring import open_embedded
    from simulator.candle_path import CandlePath
    from simulator.price_path import Bar
    from simulator.ratelimits import Tier

    def open_sandbox(market: ReplayMarket) -> EmbeddedExchange:
        pair = replayed_pair(market.symbol)
        bars = [
            # OHLCVT carries no vwap: the typical price stands in for it
            Bar(
                c.time, c.open, c.high, c.low, c.close, (c.open + c.high + c.low + c.close) / 4, c.volume, c.trades or 0
            )
            for c in market.candles
        ]
        return open_embedded(
            market.state_path,
            seed=market.seed,
            start_time=market.start,
            tier=Tier(settings.simulator.tier),
            paths={pair.key: CandlePath(pair, market.interval_minutes, bars)},
        )

    return open_sandbox


def replayed_pair(symbol: str) -> Pair:
    """The sandbox's pair `symbol` names; a replay runs only on the embedded sandbox, so
    one it does not trade is known before anything is made."""
    from core.domain.errors import InputError
    from simulator.exceptions import UnknownAssetPair
    from simulator.pairs import PAIRS, find_pair

    try:
        return find_pair(symbol)
    except UnknownAssetPair:
        known = ", ".join(_shown(p) for p in PAIRS.values())
        raise InputError(f"the sandbox does not trade {symbol}; replay one of {known}") from None


def check_prices(series: CandleSeries, pair: Pair) -> None:
    """Every candle quotable at the sandbox's tick for `pair`, as its market rounds them:
    a price that rounds to 0 would leave the market without one, a price too large for
    Decimal's digits at that tick could not be quoted at all."""
    from decimal import InvalidOperation

    from core.domain.errors import InputError

    for candle in series.candles:
        where = f"{series.source}: line {candle.line}"
        try:
            lowest = candle.low.quantize(pair.tick_size)
            candle.high.quantize(pair.tick_size)
        except InvalidOperation:
            raise InputError(f"{where}: high {candle.high} is too large a price for the sandbox to quote") from None
        if lowest <= 0:
            raise InputError(
                f"{where}: low {candle.low} is below {_shown(pair)}'s price tick {pair.tick_size}, "
                "so the sandbox would quote it at 0"
            )


def _shown(pair: Pair) -> str:
    return pair.wsname.replace("XBT", "BTC")


@contextmanager
def _quiet_coordinator() -> Iterator[None]:
    """The coordinator warns on every change of degradation level: over a year of
    candles that buries the progress bar, and the report counts the levels instead."""
    import logging

    logger = logging.getLogger("core.decision.coordinator")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _epoch(text: str | None, option: str) -> int | None:
    from core.domain.errors import InputError
    from core.flows.candles import parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date: write 2025-03-01, 2025-03-01T12:00 or an epoch") from None


@reports_errors
def replay(
    file: Annotated[Path, typer.Argument(help="Candles: Kraken's OHLCVT export or a headed OHLCV CSV.")],
    symbol: Annotated[str, typer.Option("--symbol", metavar="SYMBOL", help="The pair the candles are of.")] = "BTC/USD",
    interval: Annotated[int, typer.Option("--interval", metavar="MINUTES", help="Minutes per candle in FILE.")] = 60,
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="First decision at or after this date (UTC, or an epoch)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Stop the market at this date (UTC, or an epoch).")
    ] = None,
    every: Annotated[int, typer.Option("--every", metavar="N", min=1, help="A decision every N candles.")] = 4,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME[:key=value,...]",
            help="A sandbox fault to inject (repeatable), NAME[:key=value,...] or random.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N", min=0, help="Seed of the exchange and its faults (default: settings)."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Replay recorded candles through the whole trade cycle; report the figures and the
    equity curve against buy-and-hold. Exit 3 if a safety invariant broke."""
    import asyncio

    from cli import replay_render
    from cli.faults import check_faults
    from cli.wiring import fault_catalog
    from core.flows.candles import load_candles
    from core.flows.replay import Replay, ReplayOptions, trading_span
    from core.storage.store import Store

    settings = settings_from(db, config)
    options = ReplayOptions(
        symbol=symbol,
        every=every,
        start=_epoch(start, "--from"),
        end=_epoch(end, "--to"),
        faults=tuple(
            check_faults([f for f in fault or () if f != "random"], tg_faults=False)
            + [f for f in fault or () if f == "random"]
        ),
        seed=settings.simulator.seed if seed is None else seed,
    )
    series = load_candles(file, interval_minutes=interval)
    check_prices(series, replayed_pair(symbol))
    trading_span(series, options)  # a window with nothing to replay is refused before the store opens
    replay_render.data_issues(series)
    runner = Replay(settings, replay_sandbox(settings), replays_folder(settings.db_path), catalog=fault_catalog())
    collector.work_begins()
    with Store.open(settings.db_location) as store, replay_render.replay_progress() as progress, _quiet_coordinator():
        result = asyncio.run(runner.run(series, options, progress, record_in=store))
    replay_render.replay_report(result.to_dict(), as_json=json_output)
    if not result.ok:
        raise typer.Exit(ExitCode.UNSAFE)
