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

from core.domain.serialize import to_jsonable

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

    from core.domain.models import Order, Position
    from core.execution.reconcile import ReconcileReport
    from core.storage.store import RunRecord

_ALERT_STYLE = {"CRITICAL": "bold white on red", "HIGH": "bold red", "LOW": "yellow"}


def _console() -> Console:
    return Console(highlight=False)


def _table(*columns: str, title: str) -> Table:
    """Values fold onto a second line rather than being cut: ids and amounts must be read whole."""
    table = Table(*columns, title=title)
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = column.header in _ID_COLUMNS
    return table


_ID_COLUMNS = {"txid", "run", "position"}


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
                status += f" ({_plain(o['filled_volume'])} filled)"
            table.add_row(
                o["role"],
                o["txid"] or "-",
                o["type"],
                o["side"],
                _plain(o["volume"]),
                _plain(o["price"]) if o["price"] else "-",
                status,
            )
        console.print(table)
    position = summary.get("position")
    if position:
        console.print(
            f"  position [cyan]{position['id']}[/] {position['status']}: {position['side']} {position['size']} "
            f"@ {position['entry_price']}, stop-loss {position['stop_loss']}, take-profit {position['take_profit']}"
        )
    level = summary.get("alert_level")
    if level:
        console.print(f"  [{_ALERT_STYLE.get(level, 'red')}]ALERT {level}[/]: {summary.get('error_message') or ''}")
    for change in summary.get("reconciled", []):
        console.print(f"  [cyan]reconciled[/]: {change}")
    for warning in summary.get("warnings", []):
        console.print(f"  [yellow]warning[/]: {warning}")
    where = (
        f"stored in {summary['db_path']}" if summary.get("stored", True) else "[red]NOT fully stored[/] (see stderr)"
    )
    console.print(f"  status [bold]{summary['status']}[/]; {where}")


def _plain(amount: str) -> str:
    """An exact amount without trailing zeros: 0.41666666, 60006.5, 0."""
    return format(Decimal(amount).normalize(), "f")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


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
    table = _table("run", "kind", "symbol", "started (UTC)", "action", "status", title="runs")
    for row in rows:
        table.add_row(
            row["run_id"],
            row["kind"],
            row["symbol"] or "-",
            _when(row["started_at"]),
            row["action"] or "-",
            row["status"],
        )
    console.print(table)


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
    rows = [to_jsonable(p) for p in positions]
    if as_json:
        print_json(rows)
        return
    console = _console()
    if not rows:
        console.print("no positions yet")
        return
    table = _table(
        "position", "symbol", "side", "size", "entry", "stop", "target", "status", "exit", "P&L", title="positions"
    )
    for p in rows:
        table.add_row(
            p["id"],
            p["symbol"],
            p["side"],
            p["size"],
            p["entry_price"],
            p["stop_loss"] or "-",
            p["take_profit"] or "-",
            p["status"],
            p["exit_price"] or "-",
            f"{Decimal(p['realized_pnl']):.2f}" if p["realized_pnl"] is not None else "-",
        )
    console.print(table)


def orders_table(orders: Sequence[Order], *, as_json: bool) -> None:
    rows = [to_jsonable(o) for o in orders]
    if as_json:
        print_json(rows)
        return
    console = _console()
    if not rows:
        console.print("no orders yet")
        return
    table = _table("txid", "role", "symbol", "type", "side", "volume", "filled", "price", "status", title="orders")
    for o in rows:
        table.add_row(
            o["external_id"] or "-",
            o["role"],
            o["symbol"],
            o["order_type"],
            o["side"],
            o["volume"],
            o["filled_volume"],
            o["price"] or o["avg_fill_price"] or "-",
            o["status"],
        )
    console.print(table)


def progress_bar(*columns: ProgressColumn | str) -> Progress:
    """A progress bar on stderr (stdout stays the command's output), shown only to a
    terminal: a log or a pipe gets no bar and no blank line where it was."""
    from rich.progress import Progress

    console = Console(stderr=True)
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


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
    console.print(table)
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
    from core.storage.store import RUN_FAILED, RUN_INTERRUPTED, RUN_STARTED

    unfinished = record.status in (RUN_STARTED, RUN_INTERRUPTED, RUN_FAILED)
    if unfinished:
        if as_json:
            print_json({"run_id": record.run_id, "kind": record.kind, "status": record.status, **record.summary})
            return
        _console().print(
            f"run {record.run_id} ({record.kind}) is {record.status}"
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
    hours = data["duration_s"] / 3600
    kind = "simulated" if data["simulated"] else "wall-clock"
    console.print(
        f"[bold]tg run[/] {', '.join(data['symbols'])}: {hours:.1f} h of {kind} time, stopped by {data['stopped_by']}"
    )
    console.print(
        f"  cycles {data['cycles']}, trades {data['trades']}, realized P&L {Decimal(data['realized_pnl']):.2f}, "
        f"degradation {data['degradation']}, checks {data['checks']}"
    )
    broken = {k: v for k, v in data["invariants"].items() if v}
    console.print("  invariants: every one held" if not broken else f"  [red]invariants broken[/]: {broken}")
    if data["injected"]:
        console.print("  faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(data["injected"].items())))
    for alert in data["alerts"][-10:]:
        console.print(f"  alert: {alert}")
    for error in data["reconcile_errors"][-5:]:
        console.print(f"  [red]reconcile[/]: {error}")
    console.print(f"  open positions: {len(data['open_positions'])}; run {data['run_id']}")
