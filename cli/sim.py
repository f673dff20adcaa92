"""`tg sim`: the sandbox Kraken, embedded or served."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from cli import collector
from cli.options import OUTPUT, ConfigOption, DbOption, JsonOption, reports_errors, settings_from
from cli.sim_control import SERVE_PORT, TokenOption, UrlOption, control_plane, fault_app, register

if TYPE_CHECKING:
    from simulator.embedded import EmbeddedExchange
    from simulator.server import SandboxServer

sim_app = typer.Typer(
    help="The sandbox Kraken: serve it, reset, advance, status; with --url, faults, prices, fills, balances, "
    "the clock and scenarios of a served one.",
    no_args_is_help=True,
)

DEFAULT_KEYS_OUT = Path("tg-sandbox.keys")
_KEY_SHOWN = 8
"""How many characters of an API key the banner shows: enough to tell keys apart."""


@sim_app.command("reset")
@reports_errors
def sim_reset(
    force: Annotated[
        bool,
        typer.Option("--force", help="Reset even with open positions or live orders: they are closed on the record."),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start the exchange afresh: new balances, no orders.

    Embedded: refused (exit 1) while tg.db holds open positions or live orders on it,
    unless --force. With --url, the served sandbox's opening balances come back, its
    fault rules stay (their counts and log start over)."""
    from cli import render
    from cli.wiring import embedded_sandbox, quote_balances, sandbox_path
    from core.execution.abandon import abandon, refuse_to_wipe
    from core.storage.store import Store

    if url is not None:
        with control_plane(url, control_token) as control:
            state = control.reset()
        if json_output:
            render.print_json(state)
        else:
            typer.echo(f"sandbox at {url} reset")
        return
    settings = settings_from(db, config)
    abandoned = None
    with embedded_sandbox(settings) as sandbox:
        if not isinstance(settings.db_location, Path) or settings.db_location.exists():
            with Store.open(settings.db_location) as store:
                if force:
                    abandoned = abandon(store, reason="the sandbox was reset", now=sandbox.clock.time())
                else:
                    refuse_to_wipe(store, "resetting the sandbox")
        sandbox.reset(seed=settings.simulator.seed, balances=quote_balances(settings))
        sandbox.save()
    if json_output:
        render.print_json({"path": str(sandbox_path(settings.db_path)), "abandoned": bool(abandoned)})
        return
    typer.echo(f"sandbox exchange reset: {sandbox_path(settings.db_path)}")
    if abandoned:
        typer.echo(f"closed on the record, as the exchange no longer holds them: {abandoned.describe()}")


@sim_app.command("advance")
@reports_errors
def sim_advance(
    duration: Annotated[
        str, typer.Argument(metavar="DURATION", help="How far to move the clock: 90s, 15m, 6h, 2d, 1h30m.")
    ],
    db: DbOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Move the exchange's clock and market forward (embedded, or with --url served).

    Stops, targets and resting limits fill on the way."""
    from cli.wiring import embedded_sandbox
    from core.domain.durations import parse_duration
    from core.domain.errors import InputError
    from simulator.exchange import DEFAULT_ACCOUNT, MAX_ADVANCE
    from simulator.wire import order

    seconds = parse_duration(duration)
    if seconds > MAX_ADVANCE:
        raise InputError(f"{duration!r} is {seconds} s; advance by at most {MAX_ADVANCE // 86_400}d at a time")
    if url is not None:
        with control_plane(url, control_token) as control:
            before = control.state()
            after = control.advance(seconds)
        _render_advance(_advanced(before, after, seconds), as_json=json_output)
        return
    settings = settings_from(db, config)
    collector.work_begins()  # up to MAX_ADVANCE of minutes matched
    with embedded_sandbox(settings) as sandbox:
        start = sandbox.clock.time()
        watched = [o.txid for o in sandbox.exchange.open_orders(DEFAULT_ACCOUNT)]
        sandbox.advance(seconds)
        sandbox.save()
        changed = {}
        for txid in watched:
            placed = sandbox.exchange.order(txid)
            if placed is not None and not placed.is_live:
                changed[txid] = order(placed, with_trades=True)
    report = {
        "from": start,
        "to": sandbox.clock.time(),
        "seconds": seconds,
        "changed": changed,
        "still_open": len(watched) - len(changed),
    }
    _render_advance(report, as_json=json_output)


@sim_app.command("status")
@reports_errors
def sim_status(
    db: DbOption = None,
    config: ConfigOption = None,
    url: UrlOption = None,
    control_token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the exchange (embedded, or with --url served): time, prices, balances, open orders."""
    from cli.wiring import embedded_sandbox, sandbox_path

    if url is not None:
        with control_plane(url, control_token) as control:
            _render_status(_served_status(url, control.state()), as_json=json_output)
        return

    settings = settings_from(db, config)
    path = sandbox_path(settings.db_path)
    if path.exists():
        with embedded_sandbox(settings) as sandbox:
            status = _status(sandbox, path)
    else:  # how a fresh one would open, without making one where it would live
        import tempfile

        with (
            tempfile.TemporaryDirectory(prefix="tg-status-") as scratch,
            embedded_sandbox(settings, path=Path(scratch) / path.name) as sandbox,
        ):
            status = _status(sandbox, path)
    _render_status(status, as_json=json_output)


def _status(sandbox: EmbeddedExchange, path: Path) -> dict[str, Any]:
    """The exchange's state, named as tg names pairs and assets everywhere (BTC/USD, USD)."""
    from core.exchange.pairs import user_asset, user_symbol
    from simulator.exchange import DEFAULT_ACCOUNT
    from simulator.pairs import ASSETS, PAIRS
    from simulator.wire import amount, order

    exchange = sandbox.exchange
    prices = {}
    for pair in PAIRS.values():
        ticker = exchange.ticker(pair)
        prices[user_symbol(pair.wsname)] = {
            name: amount(value, pair.pair_decimals)
            for name, value in (("last", ticker.last), ("bid", ticker.bid), ("ask", ticker.ask))
        }
    held = exchange.balance(DEFAULT_ACCOUNT)
    open_orders = []
    for placed in exchange.open_orders(DEFAULT_ACCOUNT):
        wire = order(placed, with_trades=False)
        descr = wire["descr"]
        open_orders.append(
            {
                "txid": placed.txid,
                "pair": user_symbol(PAIRS[placed.spec.pair].wsname),
                "side": descr["type"],
                "order_type": descr["ordertype"],
                "volume": wire["vol"],
                "price": descr["price"],
            }
        )
    return {
        "path": str(path),
        "saved": path.exists(),
        "time": exchange.now(),
        "seed": exchange.state.seed,
        "prices": prices,
        "balances": {
            user_asset(ASSETS[asset].altname): amount(value, ASSETS[asset].decimals) for asset, value in held.items()
        },
        "open_orders": open_orders,
    }


def _default_account(state: dict[str, Any]) -> dict[str, Any]:
    from simulator.exchange import DEFAULT_ACCOUNT

    return state["accounts"][DEFAULT_ACCOUNT]


def _advanced(before: dict[str, Any], after: dict[str, Any], seconds: int) -> dict[str, Any]:
    """What `tg sim advance` reports, from a served sandbox's state before and after."""
    watched = list(_default_account(before)["open"])
    orders = _default_account(after)["orders"]
    changed = {txid: orders[txid] for txid in watched if txid in orders and orders[txid]["status"] != "open"}
    return {
        "from": before["time"],
        "to": after["time"],
        "seconds": seconds,
        "changed": changed,
        "still_open": len(watched) - len(changed),
    }


def _served_status(url: str, state: dict[str, Any]) -> dict[str, Any]:
    """A served sandbox's state in the vocabulary of the embedded one's status."""
    from core.exchange.pairs import user_asset, user_symbol
    from simulator.pairs import ASSETS, PAIRS

    account = _default_account(state)
    open_orders = [
        {
            "txid": txid,
            "pair": user_symbol(PAIRS[o["descr"]["pair"]].wsname)
            if o["descr"]["pair"] in PAIRS
            else o["descr"]["pair"],
            "side": o["descr"]["type"],
            "order_type": o["descr"]["ordertype"],
            "volume": o["vol"],
            "price": o["descr"]["price"],
        }
        for txid, o in account["open"].items()
    ]
    return {
        "url": url,
        "time": state["time"],
        "frozen": state["frozen"],
        "seed": state["seed"],
        "prices": {user_symbol(PAIRS[key].wsname): {"last": price} for key, price in state["prices"].items()},
        "balances": {user_asset(ASSETS[asset].altname): value for asset, value in account["balances"].items()},
        "open_orders": open_orders,
        "faults": state["faults"],
    }


@sim_app.command("faults")
@reports_errors
def sim_faults(json_output: JsonOption = False) -> None:
    """The faults tg simulate, tg run, tg replay and tg sim serve can inject, with their options.

    Give a fault as NAME, or NAME:key=value,... with its own options and the rule's
    (endpoint, match, probability, nth, times, active_from, active_until), e.g. `ghost:match=stop_loss,variant=html-5xx`."""
    from cli import render
    from cli.faults import catalog

    listed = catalog()
    if json_output:
        render.print_json(listed)
        return
    console = render.console()
    for fault in listed:
        console.print(f"[bold]{fault['name']}[/] ({fault['by']}): {fault['summary']}")
        for option in fault["options"]:
            default = f", default {option['default']}" if option["default"] else ""
            console.print(f"    {option['name']}: {option['accepts']}{default}")
    console.print(
        "every sandbox fault also takes the rule's options: endpoint (a method or *), "
        "match (any|entry|stop_loss|take_profit), probability (0-1), nth, times, active_from, active_until"
    )


@sim_app.command("serve")
@reports_errors
def sim_serve(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="TCP port; 0 picks a free one.")] = SERVE_PORT,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N", min=0, max=2**63 - 1, help="Seed of the market (default: from settings)."),
    ] = None,
    tier: Annotated[
        Literal["starter", "intermediate", "pro", "none"] | None,
        typer.Option(
            "--tier",
            metavar="[starter|intermediate|pro|none]",
            help="Kraken verification tier for rate limits, or none: no limits, to load-test a bot "
            "(default: from settings).",
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME[:key=value,...]",
            help="Inject a fault: NAME or NAME:key=value,... (e.g. stop-fail, ghost:variant=html-5xx); repeatable.",
        ),
    ] = None,
    fault_file: Annotated[
        Path | None,
        typer.Option(
            "--fault-file", metavar="FILE", help="A JSON or TOML file of fault rules (and optionally their seed)."
        ),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            "--scenario",
            metavar="FILE",
            help="A scenario file (TOML): price moves and faults on the clock from the start.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            metavar="FILE",
            help="A file readable only by you of the key pair to accept: the API key, "
            "then its base64 secret, one a line (default: TG_KRAKEN_KEY_FILE, "
            "or TG_KRAKEN_API_KEY and TG_KRAKEN_API_SECRET; else a pair is "
            "generated).",
        ),
    ] = None,
    keys_out: Annotated[
        Path | None,
        typer.Option(
            "--keys-out",
            metavar="FILE",
            help=f"Where a generated key pair is written, readable only by you (default: ./{DEFAULT_KEYS_OUT}).",
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            help="API key to accept; repeatable, with --api-secret. Options show in `ps`: "
            "prefer --key-file or the environment.",
        ),
    ] = None,
    api_secret: Annotated[
        list[str] | None,
        typer.Option(
            "--api-secret",
            metavar="SECRET",
            help="Base64 secret of the --api-key at the same position (shows in `ps`).",
        ),
    ] = None,
    control_token: Annotated[
        str | None,
        typer.Option(
            "--control-token",
            metavar="TOKEN",
            help="Bearer token the control plane (/_sandbox/) requires; prefer "
            "TG_SANDBOX_TOKEN, as options show in `ps`. Needed by --allow-remote.",
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (needs a control token).")
    ] = False,
    nonce_window: Annotated[
        int,
        typer.Option(
            "--nonce-window", metavar="N", min=0, help="Accept nonces this far below the highest seen, once each."
        ),
    ] = 0,
    config: ConfigOption = None,
) -> None:
    """Serve a fresh sandbox Kraken over HTTP until Ctrl-C; point any Kraken client at it.

    Keys come from --key-file or the environment tg's clients read, or
    are generated into --keys-out; no secret is ever printed. The control
    plane (/_sandbox/) answers loopback clients only, or with a control
    token (TG_SANDBOX_TOKEN) whoever holds it. Each request gets a line
    of uvicorn's access log on stdout; `tg -q sim serve` logs only errors."""
    from core.exchange.sandbox_control import TOKEN_ENV
    from simulator.server import check_key_file_target, sandbox_server, serve

    served = _served_keys(list(api_key or []), list(api_secret or []), key_file, keys_out)
    if served.generated and served.key_file is not None:
        check_key_file_target(served.key_file)  # before listening, not after
    settings = settings_from(None, config)
    server = sandbox_server(
        host,
        port,
        seed=settings.simulator.seed if seed is None else seed,
        tier=None if tier == "none" else tier or settings.simulator.tier,
        faults=list(fault or []),
        fault_file=fault_file,
        scenario=scenario,
        keys=served.pairs or None,
        allow_remote=allow_remote,
        control_token=control_token or os.environ.get(TOKEN_ENV) or None,
        log_level="error" if OUTPUT.quiet else "info",  # -q: no line per request
        nonce_window=nonce_window,
    )
    collector.work_begins()
    serve(server, on_ready=lambda server: _announce(server, served))
    typer.echo("sandbox stopped")


KeySource = Literal["options", "file", "environment", "generated"]


@dataclass(frozen=True)
class _ServedKeys:
    """The key pairs `tg sim serve` accepts and how a client gets them: `key_file` is
    the file clients read (None: the environment or options), written first when the
    pair is `generated`."""

    pairs: list[tuple[str, str]]
    source: KeySource
    key_file: Path | None = None

    @property
    def generated(self) -> bool:
        return self.source == "generated"


def _served_keys(keys: list[str], secrets: list[str], key_file: Path | None, keys_out: Path | None) -> _ServedKeys:
    """Options first (--api-key/--api-secret, or --key-file), then the environment tg's
    clients read, else a pair to generate into --keys-out."""
    from collections.abc import Mapping

    from core.domain.errors import InputError
    from core.exchange.signing import KEY_FILE_ENV, Credentials

    if len(keys) != len(secrets):
        raise InputError(f"{len(keys)} --api-key and {len(secrets)} --api-secret given: give them in pairs")
    if keys and key_file is not None:
        raise InputError("give the keys one way: --key-file, or --api-key with --api-secret")
    served = _ServedKeys([], "generated", keys_out or DEFAULT_KEYS_OUT)
    if keys:
        served = _ServedKeys(list(zip(keys, secrets, strict=True)), "options")
    else:
        environ: Mapping[str, str] = os.environ if key_file is None else {KEY_FILE_ENV: str(key_file)}
        credentials = Credentials.from_env(environ)
        from_file = environ.get(KEY_FILE_ENV) or None
        if credentials is not None:
            pair = [(credentials.api_key, credentials.api_secret)]
            served = (
                _ServedKeys(pair, "environment") if from_file is None else _ServedKeys(pair, "file", Path(from_file))
            )
    if keys_out is not None and not served.generated:
        raise InputError("--keys-out is where generated keys go, but keys were given: drop it")
    return served


def _announce(server: SandboxServer, served: _ServedKeys) -> None:
    """The URL, the key (its first characters) and how a client reads the pair; never a
    secret, as a terminal is seen, scrolled back and pasted. A generated pair is
    written to its key file first."""
    import shlex

    from core.exchange.sandbox_control import TOKEN_ENV
    from core.exchange.signing import KEY_ENV, KEY_FILE_ENV, SECRET_ENV
    from simulator.server import write_key_file

    key_file = None if served.key_file is None else served.key_file.absolute()
    if served.generated and key_file is not None:
        [generated] = server.keys
        write_key_file(key_file, generated)
    where = {
        "options": "given with --api-key; options show in `ps`: prefer --key-file",
        "environment": f"from {KEY_ENV}/{SECRET_ENV}",
        "file": f"secret in {key_file}",
        "generated": f"secret in {key_file}, readable only by you",
    }[served.source]
    trade = f"tg trade BTC/USD --url {server.url}"
    use = {
        "options": f"set {KEY_ENV} and {SECRET_ENV} to the pair, then {trade}",
        "environment": f"{trade}  (tg reads the same {KEY_ENV}/{SECRET_ENV})",
    }.get(served.source, f"{KEY_FILE_ENV}={shlex.quote(str(key_file))} {trade}")
    typer.echo(f"sandbox Kraken serving at {server.url}  (Ctrl-C stops it)")
    for api_key in server.keys:
        typer.echo(f"  API key:  {api_key.key[:_KEY_SHOWN]}...  ({where})")
    typer.echo(f"  use it:   {use}")
    typer.echo(f"  streams:  {server.ws_url}  (Kraken's WebSocket v2, public and private)")
    sandbox = server.sandbox
    if sandbox is not None:
        tier = "no rate limits" if sandbox.limits is None else f"tier {sandbox.limits.tier}"
        faults = ", ".join(rule.fault for rule in sandbox.faults.rules) or "none"
        who = f"holders of the control token ({TOKEN_ENV})" if server.token_required else "loopback clients only"
        typer.echo(
            f"  seed {sandbox.exchange.state.seed}, {tier}, faults: {faults}; "
            f"state and controls under {server.url}/_sandbox/ for {who}"
        )


def _render_advance(report: dict[str, Any], *, as_json: bool) -> None:
    from decimal import Decimal

    from cli import render

    if as_json:
        render.print_json(report)
        return
    typer.echo(
        f"sandbox clock {_utc(report['from'])} -> {_utc(report['to'])} UTC; "
        f"{len(report['changed'])} order(s) done, {report['still_open']} still open"
    )
    for txid, o in report["changed"].items():
        outcome = f"{o['status']}, filled {o['vol_exec']}"
        if Decimal(o["vol_exec"]):
            outcome += f" at {o['price']}"
        if o["reason"]:
            outcome += f" ({o['reason']})"
        typer.echo(f"  {txid}  {o['descr']['order']}  -> {outcome}")


def _render_status(status: dict[str, Any], *, as_json: bool) -> None:
    from cli import render

    if as_json:
        render.print_json(status)
        return
    if "url" in status:
        clock = "frozen" if status["frozen"] else "running"
        faults = status["faults"]
        typer.echo(
            f"sandbox at {status['url']}\n  exchange time {_utc(status['time'])} UTC ({clock}), seed {status['seed']}, "
            f"{faults['rules']} fault rule(s), {faults['injected']} injected"
        )
    else:
        note = "" if status["saved"] else " (fresh: nothing saved yet)"
        typer.echo(f"sandbox {status['path']}{note}\n  exchange time {_utc(status['time'])} UTC, seed {status['seed']}")
    console = render.console()
    columns = [c for c in ("last", "bid", "ask") if all(c in quote for quote in status["prices"].values())]
    prices = render.table("pair", *columns, title="prices")
    for symbol, quote in status["prices"].items():
        prices.add_row(symbol, *(quote[c] for c in columns))
    render.show_table(console, prices)
    balances = render.table("asset", "balance", title="balances")
    for asset, value in status["balances"].items():
        balances.add_row(asset, render.plain(value))
    render.show_table(console, balances)
    if not status["open_orders"]:
        console.print("no open orders")
        return
    table = render.table("txid", "pair", "side", "type", "volume", "price", title="open orders")
    for o in status["open_orders"]:
        table.add_row(o["txid"], o["pair"], o["side"], o["order_type"], render.plain(o["volume"]), o["price"])
    render.show_table(console, table)


def _utc(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


sim_app.add_typer(fault_app, name="fault")
register(sim_app)
