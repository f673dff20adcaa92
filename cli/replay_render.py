"""The replay's output: data issues and a progress bar on stderr, then the report
(figures against buy-and-hold, decisions, votes, rejections, the equity curve drawn
in blocks) on stdout, or the figures as one JSON object."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from cli.render import print_json

if TYPE_CHECKING:
    from core.flows.candles import CandleSeries

_BLOCKS = " ▁▂▃▄▅▆▇█"
CHART_WIDTH = 72
CHART_HEIGHT = 8
SHOWN_PROBLEMS = 10


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def data_issues(series: CandleSeries) -> None:
    """What could not be used of the file, said before the run, with line numbers."""
    if not (series.problems or series.gaps or series.notes):
        return
    console = _stderr()
    console.print(
        f"[yellow]{series.source}[/]: {len(series.candles)} candles used, {len(series.problems)} rows "
        f"skipped, {len(series.gaps)} gaps ({sum(g.missing for g in series.gaps)} candles missing, "
        "replayed flat at the previous close)"
    )
    for note in series.notes:
        console.print(f"  note: {note}")
    for problem in series.problems[:SHOWN_PROBLEMS]:
        console.print(f"  line {problem.line}: {problem.kind.value}: {problem.message}")
    if len(series.problems) > SHOWN_PROBLEMS:
        console.print(f"  ... {len(series.problems) - SHOWN_PROBLEMS} more (the report lists them)")


@contextmanager
def replay_progress() -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, so --json output on stdout stays one object."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from cli.render import progress_bar

    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("candles"), TimeRemainingColumn())
    with progress_bar(*columns) as progress:
        task = progress.add_task("replaying", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def equity_chart(values: Sequence[float], *, width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> list[str]:
    """Rows of block characters, top row first: each column one stretch of the curve,
    scaled between its lowest and highest value."""
    if not values:
        return []
    columns = [values[round(i * (len(values) - 1) / max(1, width - 1))] for i in range(min(width, len(values)))]
    low, high = min(columns), max(columns)
    span = high - low
    levels = [round((v - low) / span * height * 8) if span else height * 4 for v in columns]
    rows = []
    for row in range(height, 0, -1):
        floor = (row - 1) * 8
        rows.append("".join(_BLOCKS[max(0, min(8, level - floor))] for level in levels))
    return rows


def sparkline(values: Sequence[float], width: int = CHART_WIDTH) -> str:
    return equity_chart(values, width=width, height=1)[0] if values else ""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}%"


def _plain_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _money(value: str | None) -> str:
    return "-" if value is None else f"{Decimal(value):,.2f}"


def _figures_table(summary: dict[str, Any]) -> Table:
    strategy, hold, trades = summary["strategy"], summary["buy_and_hold"], summary["trades"]
    table = Table("", "strategy", "buy & hold", title="figures")
    rows = [
        ("equity at the end", _money(strategy["end_equity"]), _money(hold["end_equity"])),
        ("total return", _pct(strategy["total_return"]), _pct(hold["total_return"])),
        ("annualised return", _pct(strategy["annualised_return"]), _pct(hold["annualised_return"])),
        ("max drawdown", _plain_pct(strategy["max_drawdown"]), _plain_pct(hold["max_drawdown"])),
        ("Sharpe", _ratio(strategy["sharpe"]), _ratio(hold["sharpe"])),
        ("Sortino", _ratio(strategy["sortino"]), _ratio(hold["sortino"])),
        ("trades", str(trades["trades"]), "1"),
        ("win rate", _plain_pct(trades["win_rate"]), "-"),
        ("best trade", _money(trades["best"]), "-"),
        ("worst trade", _money(trades["worst"]), "-"),
        ("realized P&L (net)", _money(trades["realized_pnl"]), "-"),
        ("fees paid", _money(summary["fees"]), "0.00"),
        ("time in market", _plain_pct(summary["time_in_market"]), "100.00%"),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _votes_table(votes: dict[str, dict[str, int]]) -> Table:
    actions = ["BUY", "SELL", "HOLD", "invalid"]
    table = Table("model", *actions, title="votes")
    for model, counts in votes.items():
        table.add_row(model, *(str(counts.get(a, 0)) for a in actions))
    return table


def replay_report(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json({k: v for k, v in summary.items() if k != "equity_curve"})
        return
    console = Console(highlight=False)
    span, data = summary["span"], summary["data"]
    console.print(
        f"[bold]replay[/] [cyan]{summary['run_id']}[/]  {summary['symbol']}, {summary['interval_minutes']}-minute "
        f"candles from {summary['source']}\n"
        f"  {span['start']} .. {span['end']}: {span['candles']} candles after {span['warmup_candles']} of "
        f"warm-up, a decision every {summary['every']} ({span['decisions']} decisions), seed {summary['seed']}"
        + (f", faults {', '.join(summary['faults'])}" if summary["faults"] else "")
    )
    if data["rows_skipped"] or data["gaps"]:
        counts = ", ".join(f"{kind} {n}" for kind, n in data["problem_counts"].items())
        console.print(
            f"  [yellow]data[/]: {data['rows_skipped']} rows skipped ({counts or 'none'}), {data['gaps']} gaps "
            f"({data['missing_candles']} candles missing)"
        )
    console.print(_figures_table(summary))
    _draw_curve(console, summary["equity_curve"])
    decisions = ", ".join(f"{status} {n}" for status, n in summary["decisions"].items()) or "none"
    console.print(f"decisions: {decisions}")
    levels = ", ".join(f"{level} {n}" for level, n in summary["degradation"].items())
    console.print(f"  taken at the coordinator's degradation levels: {levels or 'none'}")
    for error in summary.get("decision_errors", []):
        console.print(f"  [red]{error['time']} {error['status']}[/]: {error['note']}")
    if summary["votes"]:
        console.print(_votes_table(summary["votes"]))
    rejections = ", ".join(f"{rule} {n}" for rule, n in summary["rejections"].items())
    console.print(f"risk rejections by rule: {rejections or 'none'}")
    for position in summary["open_positions"]:
        console.print(
            f"  still open: {position['id']} {position['side']} {position['size']} @ {position['entry_price']}, "
            f"unrealized {_money(position['unrealized_pnl'])}"
        )
    if summary["injected"]:
        console.print("faults injected: " + ", ".join(f"{k} {n}" for k, n in summary["injected"].items()))
    _invariants(console, summary)
    timing = summary["timing"]
    console.print(
        f"  {timing['seconds']} s, {timing['candles_per_second']} candles/s; orders, fills, positions and "
        f"votes in {summary['db_path']} (tg orders --db {summary['db_path']})"
    )


def _draw_curve(console: Console, curve: list[list[Any]]) -> None:
    if len(curve) < 2:
        return
    equities = [float(point[1]) for point in curve]
    held = [equities[0] / float(curve[0][2]) * float(point[2]) for point in curve]
    console.print(f"equity, {_day(curve[0][0])} .. {_day(curve[-1][0])}: high {max(equities):,.2f}")
    for row in equity_chart(equities):
        console.print(f"  [green]{row}[/]")
    console.print(f"  low {min(equities):,.2f}, start {equities[0]:,.2f}, end {equities[-1]:,.2f}")
    console.print(f"buy & hold: {min(held):,.2f} .. {max(held):,.2f}")
    console.print(f"  [dim]{sparkline(held)}[/]")


def _day(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def _invariants(console: Console, summary: dict[str, Any]) -> None:
    for error in summary["exchange_errors"]:
        console.print(f"  [yellow]exchange trouble[/]: {error}")
    for name, count in summary["invariants"].items():
        mark = "[green]held[/]" if count == 0 else f"[bold red]{count} violation(s)[/]"
        console.print(f"  {name}: {mark}")
    for violation in summary["violations"]:
        console.print(f"  [red]{violation['time']} {violation['invariant']}[/]: {violation['message']}")
    checks = summary["invariant_checks"]
    verdict = "[bold green]every invariant held[/]" if summary["ok"] else "[bold red]invariants violated[/]"
    console.print(f"{verdict} ({checks} checks against the exchange)")
