"""`tg sim` on a served sandbox (tg sim serve): its faults, price, fills, balances,
clock and scenarios, through the sandbox's control plane (docs/sandbox.md). The
embedded sandbox keeps no fault rules between commands, so these act on a served one:
--url, else $TG_SIM_URL, else where `tg sim serve` listens by default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from cli.options import JsonOption, reports_errors

if TYPE_CHECKING:
    from decimal import Decimal

    from simulator.client import SandboxClient

fault_app = typer.Typer(
    help="The fault rules of a served sandbox: add, list, remove, clear, log (see `tg sim faults`).",
    no_args_is_help=True,
)


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="A served sandbox (tg sim serve) to act on, e.g. http://127.0.0.1:8765; default: the embedded one.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--control-token",
        metavar="TOKEN",
        help="The served sandbox's control token (default: TG_SANDBOX_TOKEN; options show in `ps`).",
        show_default=False,
    ),
]
SERVE_PORT = 8765
"""Where `tg sim serve` listens unless told otherwise."""
SERVED_URL = f"http://127.0.0.1:{SERVE_PORT}"
SERVED_URL_ENV = "TG_SIM_URL"
ServedUrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        metavar="URL",
        envvar=SERVED_URL_ENV,
        show_envvar=False,
        help=f"The served sandbox (tg sim serve); default: ${SERVED_URL_ENV}, else {SERVED_URL}, where it listens by default.",
        show_default=False,
    ),
]


@contextmanager
def control_plane(url: str, token: str | None) -> Iterator[SandboxClient]:
    """The control plane of the sandbox at `url`; its refusals as tg's errors: bad input
    (exit 2) for a refused argument or permission, unreachable (exit 4) for no answer."""
    from cli.options import checked_url
    from core.domain.errors import ConnectionLostError, InputError
    from core.exchange.sandbox_control import TOKEN_ENV
    from simulator.client import SandboxClient
    from simulator.exceptions import ControlRefused

    checked_url(url)
    try:
        with SandboxClient(url, token=token or os.environ.get(TOKEN_ENV) or None) as client:
            yield client
    except ControlRefused as exc:
        if exc.status == 0:
            raise ConnectionLostError(f"{exc}; is `tg sim serve` running there?") from None
        hint = f" (give the control token: {TOKEN_ENV})" if exc.status == 403 else ""
        raise InputError(f"{exc}{hint}") from None


def _print(result: Any, line: str, *, as_json: bool) -> None:
    from cli import render

    if as_json:
        render.print_json(result)
    else:
        typer.echo(line)


_UNSET = {"endpoint": "*", "match": "any", "probability": 1.0}


def _rule_line(rule: dict[str, Any]) -> str:
    """A rule as its id and the spec that would install it again."""
    fields = {
        k: v for k, v in rule.items() if k not in ("id", "fault", "params") and v is not None and _UNSET.get(k) != v
    }
    options = ",".join(f"{k}={v}" for k, v in {**fields, **rule["params"]}.items())
    return f"#{rule['id']} {rule['fault']}" + (f":{options}" if options else "")


@fault_app.command("add")
@reports_errors
def fault_add(
    specs: Annotated[list[str], typer.Argument(help="Rules: NAME or NAME:key=value,... (see `tg sim faults`).")],
    url: ServedUrlOption = SERVED_URL,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Install fault rules; their ids are printed (for `tg sim fault remove`)."""
    from cli.faults import check_faults

    check_faults(specs, tg_faults=False)
    with control_plane(url, control_token) as control:
        ids = control.add_fault(*specs)
    _print({"added": ids}, "added rule(s) " + ", ".join(f"#{i}" for i in ids), as_json=json_output)


@fault_app.command("list")
@reports_errors
def fault_list(
    url: ServedUrlOption = SERVED_URL, control_token: TokenOption = None, json_output: JsonOption = False
) -> None:
    """The rules in force, with their ids."""
    with control_plane(url, control_token) as control:
        rules = control.faults()
    _print({"rules": rules}, "\n".join(map(_rule_line, rules)) or "no fault rules", as_json=json_output)


@fault_app.command("remove")
@reports_errors
def fault_remove(
    rule_id: Annotated[int, typer.Argument(help="The rule's id (tg sim fault list).", min=0)],
    url: ServedUrlOption = SERVED_URL,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove one rule; what it did stays in the log."""
    with control_plane(url, control_token) as control:
        rules = control.remove_fault(rule_id)
    _print({"rules": rules}, f"removed rule #{rule_id}; {len(rules)} left", as_json=json_output)


@fault_app.command("clear")
@reports_errors
def fault_clear(
    url: ServedUrlOption = SERVED_URL, control_token: TokenOption = None, json_output: JsonOption = False
) -> None:
    """Remove every rule; the log stays."""
    with control_plane(url, control_token) as control:
        control.clear_faults()
    _print({"rules": []}, "no fault rules", as_json=json_output)


@fault_app.command("log")
@reports_errors
def fault_log(
    url: ServedUrlOption = SERVED_URL, control_token: TokenOption = None, json_output: JsonOption = False
) -> None:
    """Every injected fault, oldest first: when, which rule, on which call, what it did."""
    from cli.sim import _utc

    with control_plane(url, control_token) as control:
        log = control.fault_log()
    lines = [
        f"{_utc(e['time'])}  #{e['rule']} {e['fault']} on {e['endpoint']}"
        + (f" ({e['role']})" if e["role"] else "")
        + (f" txid {e['txid']}" if e["txid"] else "")
        + f": {e['effect'] or 'injected'} -> {e['outcome']}"
        for e in log
    ]
    _print({"log": log}, "\n".join(lines) or "nothing injected yet", as_json=json_output)


def sim_price(
    shape: Annotated[Literal["jump", "trend", "flat", "flash-crash"], typer.Argument(help="The shape of the move.")],
    url: ServedUrlOption = SERVED_URL,
    pair: Annotated[
        str | None, typer.Option("--pair", metavar="PAIR", help="The pair (BTC/USD, XBTUSD...); default: every pair.")
    ] = None,
    pct: Annotated[
        str, typer.Option("--pct", metavar="PERCENT", help="The move in percent, e.g. -8 (flat takes none).")
    ] = "0",
    over: Annotated[
        str | None, typer.Option("--over", metavar="DURATION", help="How long it takes: 2m, 1h (all but jump).")
    ] = None,
    recover: Annotated[
        str | None,
        typer.Option(
            "--recover", metavar="DURATION", help="flash-crash: how long the way back takes (default: --over)."
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            "--after", metavar="DURATION", help="When it starts, from now on the exchange's clock (default: now)."
        ),
    ] = None,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Shape the price of a served sandbox: a jump, a trend, a flat market, a flash crash and recovery."""
    from core.domain.durations import parse_duration

    with control_plane(url, control_token) as control:
        result = control.shape_price(
            shape,
            pair=pair,
            pct=_decimal(pct, "--pct"),
            over=0 if over is None else parse_duration(over),
            recover=None if recover is None else parse_duration(recover),
            after=0 if after is None else parse_duration(after),
        )
    _print(result, f"{shape} laid over {pair or 'every pair'}", as_json=json_output)


def sim_fill(
    txid: Annotated[str, typer.Argument(help="A live order's txid.")],
    url: ServedUrlOption = SERVED_URL,
    volume: Annotated[
        str | None, typer.Option("--volume", metavar="AMOUNT", help="How much (default: all that is left).")
    ] = None,
    price: Annotated[
        str | None, typer.Option("--price", metavar="PRICE", help="At what price (default: its limit, or the market).")
    ] = None,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Fill a resting order of a served sandbox now, wholly or in part."""
    with control_plane(url, control_token) as control:
        order = control.fill(
            txid,
            volume=None if volume is None else _decimal(volume, "--volume"),
            price=None if price is None else _decimal(price, "--price"),
        )
    _print(order, f"{txid}: {order['status']}, filled {order['vol_exec']} of {order['vol']}", as_json=json_output)


def sim_balances(
    amounts: Annotated[list[str], typer.Argument(help="ASSET=AMOUNT, e.g. USD=5000 BTC=0.5.")],
    url: ServedUrlOption = SERVED_URL,
    account: Annotated[
        str, typer.Option("--account", metavar="NAME", help="The account (a new one opens empty).")
    ] = "default",
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set balances of an account of a served sandbox (the assets not named are kept)."""
    from core.domain.errors import InputError

    balances: dict[str, Decimal | str | int] = {}
    for item in amounts:
        asset, sep, amount = item.partition("=")
        if not sep:
            raise InputError(f"{item!r} is not ASSET=AMOUNT, e.g. USD=5000")
        balances[asset.strip()] = _decimal(amount, asset)
    with control_plane(url, control_token) as control:
        result = control.set_balances(balances, account=account)
    shown = ", ".join(f"{asset} {amount}" for asset, amount in result["balances"].items())
    _print(result, f"{account}: {shown}", as_json=json_output)


def sim_clock(
    action: Annotated[Literal["freeze", "release", "show"], typer.Argument(help="freeze, release or show.")],
    url: ServedUrlOption = SERVED_URL,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Freeze a served sandbox's clock (only `tg sim advance` moves it) or let it run again."""
    from cli.sim import _utc

    with control_plane(url, control_token) as control:
        result = {"freeze": control.freeze, "release": control.release, "show": control.clock}[action]()
    state = "frozen" if result["frozen"] else "running"
    _print(result, f"sandbox clock {_utc(result['time'])} UTC, {state}", as_json=json_output)


def sim_scenario(
    path: Annotated[Path, typer.Argument(help="A scenario file (TOML; see examples/scenarios/).")],
    url: ServedUrlOption = SERVED_URL,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Load a scenario into a served sandbox, on its clock from now."""
    from core.domain.errors import InputError
    from simulator.scenario import ScenarioError, load_scenario

    try:
        load_scenario(path)  # refused here, with the file's name, rather than by the sandbox
    except ScenarioError as exc:
        raise InputError(str(exc)) from None
    with control_plane(url, control_token) as control:
        result = control.load_scenario(path.read_text(encoding="utf-8"))
    line = f"scenario {path} loaded: {len(result['added'])} fault rule(s), {len(result['shapes'])} price shape(s)"
    _print(result, line, as_json=json_output)


def _decimal(text: str, name: str) -> Decimal:
    from decimal import Decimal, InvalidOperation

    from core.domain.errors import InputError

    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise InputError(f"{name} {text!r} is not a number")
    return value


def register(app: typer.Typer) -> None:
    """Add the served-only commands to `tg sim`."""
    for name, command in (
        ("price", sim_price),
        ("fill", sim_fill),
        ("balances", sim_balances),
        ("clock", sim_clock),
        ("scenario", sim_scenario),
    ):
        app.command(name)(reports_errors(command))
