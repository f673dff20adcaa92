"""Terminal output: rich tables for people, one JSON object with --json.

Renders from the same dictionaries that --json prints, so both always agree."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from rich.console import Console
from rich.table import Table

from core.domain.durations import format_duration
from core.domain.serialize import order_json, position_json

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

    from core.domain.models import Order, Position
    from core.execution.reconcile import ReconcileReport
    from core.storage.store import RunRecord

_ALERT_STYLE = {"CRITICAL": "bold white on red", "HIGH": "bold red", "LOW": "yellow"}


def _console() -> Console:
    return Console(highlight=False)


def _table(*columns: str, title: str) -> Table:
    """Ids, amounts and times are never wrapped or cut, and amounts line up on the right;
    only words (roles, types, statuses) give way when the terminal is narrow. The table
    draws few lines so that ten columns fit in 80."""
    from rich import box

    table = Table(*columns, title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)
    for column in table.columns:
        header = str(column.header)
        column.overflow = "fold"
        column.no_wrap = header in _WHOLE_COLUMNS or header in _NUMBER_COLUMNS
        if header in _NUMBER_COLUMNS:
            column.justify = "right"
    return table


_WHOLE_COLUMNS = {
    "txid",
    "run",
    "position",
    "symbol",
    "pair",
    "asset",
    "started (UTC)",
    "closed (UTC)",
    "at",
    "setting",
}
"""Columns read as one token: an id, a pair, a moment."""
_ROLE_SHOWN = {"stop_loss": "stop", "take_profit": "target"}
"""Roles in a table as the positions table names them, so that orders fit 80 columns."""
_NUMBER_COLUMNS = {
    "volume",
    "filled",
    "price",
    "size",
    "entry",
    "stop",
    "target",
    "exit",
    "P&L",
    "last",
    "bid",
    "ask",
    "balance",
    "seed",
}


def show_table(console: Console, table: Table) -> None:
    """The table, or, where the terminal is too narrow for it to show every id and amount
    whole, each row as a block of `column: value` lines."""
    columns = [(str(column.header), [str(cell) for cell in column.cells], column.no_wrap) for column in table.columns]
    if _narrowest(columns) <= console.width:
        from rich.cells import cell_len

        for column, (header, cells, whole) in zip(table.columns, columns, strict=True):
            if whole:  # rich would otherwise take width from them first
                column.min_width = max(cell_len(text) for text in [header, *cells])
        console.print(table)
        return
    console.print(f"[italic]{table.title}[/]")
    for row in range(table.row_count):
        console.print("\n".join(f"  {header}: {cells[row]}" for header, cells, _ in columns))
        console.print()


def _narrowest(columns: list[tuple[str, list[str], bool]]) -> int:
    """The least width showing every whole column whole and every other one's longest word."""
    from rich.cells import cell_len

    width = 0
    for header, cells, whole in columns:
        texts = [header, *cells]
        pieces = texts if whole else [word for text in texts for word in text.split()]
        width += max((cell_len(piece) for piece in pieces), default=0) + 1
    return width - 1


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def trade_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    console = _console()
    votes = ", ".join(f"{v['model']} {v['action']}" + ("" if v["valid"] else " (invalid)") for v in summary["votes"])
    consensus = summary.get("consensus")
    console.print(
        f"[bold]{summary['symbol']}[/] at {summary['price']}  run [cyan]{summary['run_id']}[/]\n"
        f"  TA: {summary['ta']['bias']} ({summary['ta']['confidence']:.2f})   "
        f"regime: {summary['regime']['regime']} ({summary['regime']['confidence']:.2f})"
    )
    line = f"  decision: [bold]{summary['action']}[/]"
    if consensus is not None:
        line += f"  consensus {consensus:.0%}, confidence {summary['confidence']:.2f}"
    console.print(line)
    if votes:
        console.print(f"  votes: {votes}")
    risk = summary["risk"]
    if risk["status"] is not None:
        style = "green" if summary["approved"] else "red"
        console.print(f"  risk: [{style}]{risk['status']}[/]" + "".join(f"\n    - {r}" for r in risk["reasons"]))
    if summary["orders"]:
        table = _table("role", "txid", "type", "side", "volume", "price", "status", title="orders")
        for o in summary["orders"]:
            status = o["status"]
            if Decimal(o["filled_volume"]) not in (0, Decimal(o["volume"])):
                status += f" ({plain(o['filled_volume'])} filled)"
            table.add_row(
                _ROLE_SHOWN.get(o["role"], o["role"]),
                o["txid"] or "-",
                o["order_type"],
                o["side"],
                plain(o["volume"]),
                plain(o["price"] or o["avg_fill_price"]),
                status,
            )
        show_table(console, table)
    position = summary.get("position")
    if position:
        console.print(
            f"  position [cyan]{position['id']}[/] {position['status']}: {position['side']} {plain(position['size'])} "
            f"@ {plain(position['entry_price'])}, stop-loss {plain(position['stop_loss'])}, "
            f"take-profit {plain(position['take_profit'])}"
        )
    level = summary.get("alert_level")
    if level:
        console.print(f"  [{_ALERT_STYLE.get(level, 'red')}]ALERT {level}[/]: {summary.get('error_message') or ''}")
    elif summary.get("error_message"):
        console.print(f"  [red]error[/]: {summary['error_message']}")
    for change in summary.get("reconciled", []):
        console.print(f"  [cyan]reconciled[/]: {change}")
    for warning in summary.get("warnings", []):
        console.print(f"  [yellow]warning[/]: {warning}")
    where = (
        f"stored in {summary['db_path']}" if summary.get("stored", True) else "[red]NOT fully stored[/] (see stderr)"
    )
    console.print(f"  status [bold]{summary['status']}[/]; {where}")


def plain(amount: str | None) -> str:
    """An exact amount without trailing zeros (0.41666666, 60006.5, 0, never 0E-8); "-"
    for none."""
    return "-" if amount is None else format(Decimal(amount).normalize(), "f")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _minute(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def when(epoch: float | None, *, simulated: bool) -> str:
    """A moment in UTC, labelled with the clock it was read on."""
    return "-" if epoch is None else f"{_when(epoch)} UTC" + (" (simulated)" if simulated else "")


def console() -> Console:
    return _console()


def table(*columns: str, title: str) -> Table:
    return _table(*columns, title=title)


class _RunRow(TypedDict):
    run_id: str
    kind: str
    symbol: str | None
    status: str
    started_at: float
    action: str | None


def runs_table(records: Sequence[RunRecord], *, as_json: bool) -> None:
    rows: list[_RunRow] = [
        {
            "run_id": r.run_id,
            "kind": r.kind,
            "symbol": r.symbol,
            "status": r.status,
            "started_at": r.started_at,
            "action": r.summary.get("action"),
        }
        for r in records
    ]
    if as_json:
        print_json(rows)
        return
    console = _console()
    if not rows:
        console.print("no runs yet: `tg trade BTC/USDT` makes one")
        return
    table = _table("run", "kind", "symbols", "started (UTC)", "action", "status", title="runs")
    for row in rows:
        table.add_row(
            row["run_id"],
            row["kind"],
            ", ".join((row["symbol"] or "-").split(",")),  # a run of several pairs wraps between them
            _when(row["started_at"]),
            row["action"] or "-",
            row["status"],
        )
    show_table(console, table)


def reconcile_outcome(report: ReconcileReport, install_id: str, db_path: str) -> dict[str, Any]:
    return {
        "install_id": install_id,
        "changes": report.changes,
        "errors": report.errors,
        "pending": report.pending,
        "foreign": report.foreign,
        "unrecorded": report.unrecorded,
        "db_path": db_path,
    }


def reconcile_report(outcome: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(outcome)
        return
    console = _console()
    if not outcome["changes"] and not outcome["errors"]:
        console.print(f"database and exchange agree; nothing to change ({outcome['db_path']})")
    for change in outcome["changes"]:
        console.print(f"  [green]changed[/]: {change}")
    for error in outcome["errors"]:
        console.print(f"  [red]could not repair[/]: {error}")
    for waiting in outcome["pending"]:
        console.print(f"  [yellow]pending[/]: {waiting}")
    for seen in outcome["foreign"]:
        console.print(f"  [dim]{seen}[/]")
    console.print(f"  tg's orders here carry install id {outcome['install_id']}")


def would_change(report: ReconcileReport) -> None:
    """What `tg reconcile` would do, after a listing that only read the exchange."""
    console = _console()
    for change in report.changes:
        console.print(f"  [yellow]tg reconcile would[/]: {change}")
    for error in report.errors:
        console.print(f"  [red]problem[/]: {error}")
    for seen in report.foreign:
        console.print(f"  [dim]{seen}[/]")


def unrecorded(records: Sequence[dict[str, Any]]) -> None:
    """Records storage refused, one spool line each on stderr: saved into the spool file
    (tg.pending.jsonl beside the database), the next command writes them."""
    if not records:
        return
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    err.print(
        f"error: {len(records)} record(s) could not be stored (database and spool refused); "
        "the exchange side is done and protected. Append the lines below to the spool file "
        "beside the database (tg.pending.jsonl) once storage works; `tg reconcile` writes them:"
    )
    for record in records:
        err.out(json.dumps(record), highlight=False)


def positions_table(positions: Sequence[Position], *, as_json: bool) -> None:
    """Open positions with their protection, closed ones with their outcome: two tables,
    so that each fits 80 columns with every amount whole."""
    rows = [position_json(p) for p in positions]
    if as_json:
        print_json(rows)
        return
    console = _console()
    if not rows:
        console.print("no positions yet")
        return
    opened = [p for p in rows if p["status"] == "open"]
    closed = [p for p in rows if p["status"] != "open"]

    def held(p: dict[str, Any]) -> list[str]:
        return [p["id"], p["symbol"], p["side"], plain(p["size"]), plain(p["entry_price"])]

    if opened:
        table = _table("position", "symbol", "side", "size", "entry", "stop", "target", title="open positions")
        for p in opened:
            table.add_row(*held(p), plain(p["stop_loss"]), plain(p["take_profit"]))
        show_table(console, table)
    if closed:
        table = _table(
            "position", "symbol", "side", "size", "entry", "exit", "P&L", "closed (UTC)", title="closed positions"
        )
        for p in closed:
            pnl = f"{Decimal(p['realized_pnl']):.2f}" if p["realized_pnl"] is not None else "-"
            table.add_row(*held(p), plain(p["exit_price"]), pnl, _minute(p["closed_at"]))
        show_table(console, table)


def orders_table(orders: Sequence[Order], *, as_json: bool) -> None:
    rows = [order_json(o) for o in orders]
    if as_json:
        print_json(rows)
        return
    console = _console()
    if not rows:
        console.print("no orders yet")
        return
    table = _table("txid", "role", "symbol", "side", "volume", "price", "status", title="orders")
    for o in rows:
        status = o["status"]
        if Decimal(o["filled_volume"]) not in (0, Decimal(o["volume"])):
            status += f", {plain(o['filled_volume'])} filled"
        table.add_row(
            o["txid"] or "-",
            _ROLE_SHOWN.get(o["role"], o["role"]),
            o["symbol"],
            o["side"],
            plain(o["volume"]),
            plain(o["price"] or o["avg_fill_price"]),
            status,
        )
    show_table(console, table)


def progress_bar(*columns: ProgressColumn | str) -> Progress:
    """A progress bar on stderr (stdout stays the command's output), shown only to a
    terminal: a log or a pipe gets no bar and no blank line where it was; --quiet none."""
    from rich.progress import Progress

    console = Console(stderr=True)
    from cli.options import OUTPUT

    return Progress(*columns, console=console, transient=True, disable=OUTPUT.quiet or not console.is_terminal)


@contextmanager
def simulation_progress(total: int) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr, so --json output on stdout stays one object."""
    with progress_bar() as progress:
        task = progress.add_task("simulating", total=total)
        yield lambda _result: progress.advance(task)


def simulation_report(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    console = _console()
    table = _table("run", "seed", "faults", "injected", "outcome", "alert", "invariants", title="simulated runs")
    for run in summary["details"][:50]:
        broken = ", ".join(f"{k} x{len(v)}" for k, v in run["violations"].items()) or "[green]held[/]"
        injected = ", ".join(f"{k} x{n}" for k, n in sorted(run["injected"].items())) or "-"
        table.add_row(
            str(run["run"]),
            str(run["seed"]),
            ", ".join(run["faults"]) or "-",
            injected,
            run["status"],
            run["alert_level"] or "-",
            broken,
        )
    show_table(console, table)
    if len(summary["details"]) > 50:
        console.print(f"  ... and {len(summary['details']) - 50} more runs (--json for the totals)")
    console.print("outcomes: " + ", ".join(f"{k} {n}" for k, n in summary["outcomes"].items()))
    console.print("injected: " + (", ".join(f"{k} {n}" for k, n in summary["injected"].items()) or "nothing"))
    for name, count in summary["invariants"].items():
        mark = "[green]held[/]" if count == 0 else f"[bold red]{count} violation(s)[/]"
        console.print(f"  {name}: {mark}")
    for run in summary["details"]:
        for name, problems in run["violations"].items():
            for problem in problems:
                console.print(f"  [red]run {run['run']} {name}[/]: {problem}")
    verdict = "[bold green]every invariant held[/]" if summary["ok"] else "[bold red]invariants violated[/]"
    console.print(verdict)
    if summary.get("campaign") and not summary.get("shards"):
        console.print(f"campaign {summary['campaign']}, shard {summary['shard']} (`tg campaign` merges the shards)")


def campaign_report(summary: dict[str, Any], *, as_json: bool) -> None:
    """A campaign's merged shards: the simulation report, then which shards it holds."""
    simulation_report(summary, as_json=as_json)
    if as_json:
        return
    shards = summary["shards"]
    console = _console()
    console.print(
        f"campaign {summary['campaign']}: shards {', '.join(map(str, shards['recorded']))} of {shards['count']}, "
        f"{summary['runs']} runs"
    )
    if shards["missing"]:
        console.print(f"[yellow]missing shards: {', '.join(shards['missing'])}[/]")
    if shards["unfinished"]:
        console.print(f"[yellow]shards still running or killed: {', '.join(shards['unfinished'])}[/]")


def stored_run(record: RunRecord, *, as_json: bool) -> None:
    """A stored run as its command showed it; a run that never ended (interrupted,
    killed, or still going) shows what it had finished."""
    from core.flows.journal import RUN_DIED
    from core.storage.store import RUN_FAILED, RUN_INTERRUPTED, RUN_STARTED

    unfinished = record.status in (RUN_STARTED, RUN_INTERRUPTED, RUN_FAILED, RUN_DIED)
    if unfinished:
        if as_json:
            print_json({"run_id": record.run_id, "kind": record.kind, "status": record.status, **record.summary})
            return
        state = "died: its process ended without finishing it" if record.status == RUN_DIED else record.status
        _console().print(
            f"run {record.run_id} ({record.kind}) {'' if record.status == RUN_DIED else 'is '}{state}"
            + (f": {record.summary['error']}" if "error" in record.summary else "")
            + ("; what it had finished:" if record.summary else "; it had finished nothing")
        )
        if not record.summary or "progress" in record.summary:
            if record.summary:
                print_json(record.summary)
            return
    if record.kind == "replay":
        from cli.replay_render import replay_report

        replay_report(record.summary, as_json=as_json)
    elif record.kind == "simulate":
        simulation_report(record.summary, as_json=as_json)
    elif record.kind == "run":
        run_summary(record.summary, as_json=as_json)
    else:
        trade_summary(record.summary, as_json=as_json)


def run_summary(data: dict[str, Any], *, as_json: bool) -> None:
    """A run's summary as RunSummary.to_dict() has it (also as `tg show` reads it back)."""
    if as_json:
        print_json(data)
        return
    console = _console()
    kind = "simulated" if data["simulated"] else "wall-clock"
    console.print(
        f"[bold]tg run[/] {', '.join(data['symbols'])}: {format_duration(data['duration_s'])} of {kind} time, "
        f"stopped by {data['stopped_by']}"
    )
    console.print(
        f"  cycles {data['cycles']}, trades {data['trades']}, realized P&L {Decimal(data['realized_pnl']):.2f}, "
        f"degradation {data['degradation']}, checks {data['checks']}"
    )
    broken = {k: v for k, v in data["invariants"].items() if v}
    console.print("  invariants: every one held" if not broken else f"  [red]invariants broken[/]: {broken}")
    for violation in data.get("violations", [])[:10]:  # runs stored before violations were kept have none
        console.print(
            f"    {when(violation['time'], simulated=data['simulated'])} {violation['invariant']}: {violation['message']}"
        )
    unjudged = data.get("unjudged") or {}  # runs stored before checks left assets out have none
    if unjudged:
        console.print(
            "  left to an execution in flight when checked (this run's or another tg's): "
            + ", ".join(
                f"{asset} ({count} check{'s' if count > 1 else ''})" for asset, count in sorted(unjudged.items())
            )
        )
    if data["injected"]:
        console.print("  faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(data["injected"].items())))
    for alert in data["alerts"][-10:]:
        console.print(f"  alert: {alert}")
    for error in data["reconcile_errors"][-5:]:
        console.print(f"  [red]reconcile[/]: {error}")
    console.print(f"  open positions: {len(data['open_positions'])}; run {data['run_id']}")
