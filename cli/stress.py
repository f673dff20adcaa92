"""`tg ratelimit-stress`: fire requests through tg's client at a sandbox that enforces
Kraken's counters, and report what the exchange refused and how much of the allowed
rate was used.

In-process by default, on virtual time: the event loop fast-forwards (looptime) and
the sandbox's clock follows it, so an hour of pacing takes a second and every wait is
exact. --realtime runs the same on wall time; --url aims at a served sandbox
(`tg sim serve`), with its key pair in TG_KRAKEN_API_KEY / TG_KRAKEN_API_SECRET.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli import collector
from cli.options import ConfigOption, JsonOption, reports_errors, settings_from

if TYPE_CHECKING:
    from core.flows.ratelimit_stress import StressReport, StressTarget


@reports_errors
def ratelimit_stress(
    requests: Annotated[int, typer.Option("--requests", metavar="N", help="How many calls to fire.")] = 1000,
    concurrency: Annotated[int, typer.Option("--concurrency", metavar="N", help="How many at a time.")] = 20,
    tier: Annotated[
        str,
        typer.Option(
            "--tier", metavar="[starter|intermediate|pro]", help="starter|intermediate|pro: the sandbox's limits."
        ),
    ] = "starter",
    mix: Annotated[
        str,
        typer.Option(
            "--mix",
            metavar="[query|orders|mixed]",
            help="query (Balance) | orders (add, cancel) | mixed (add, query, cancel).",
        ),
    ] = "query",
    limiter: Annotated[
        str, typer.Option("--limiter", metavar="[kraken|token-bucket|none]", help="kraken | token-bucket | none.")
    ] = "kraken",
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="A served sandbox on a loopback address (default: in-process)."),
    ] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Wall time instead of virtual time.")] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stress the rate limiter against the sandbox: violations, utilization, waits."""
    import asyncio

    from core.flows.ratelimit_stress import StressPlan, run_stress

    plan = StressPlan.from_options(requests=requests, concurrency=concurrency, tier=tier, mix=mix, limiter=limiter)
    settings = settings_from(None, config)

    async def run() -> StressReport:
        target = await served_target(url, plan.tier) if url is not None else sandbox_target(plan.tier)
        with _progress(plan.requests) as advance:
            return await run_stress(plan, target, settings.kraken.rate_limit, on_request=advance)

    simulated = url is None and not realtime
    collector.work_begins()
    if simulated:
        import looptime

        # In-process nothing waits on the outside world: a loop idle for a second of wall
        # time is stuck, and says so instead of hanging.
        with asyncio.Runner(loop_factory=lambda: looptime.new_event_loop(start=0, idle_timeout=1.0)) as runner:
            report = runner.run(run())
    else:
        report = asyncio.run(run())
    _render(report, as_json=json_output, simulated=simulated)
    if report.failed:
        raise typer.Exit(1)


def sandbox_target(tier: str) -> StressTarget:
    """A fresh sandbox in this process, on a clock that follows the event loop."""
    import httpx

    from core.domain.clock import LoopClock
    from core.exchange import Credentials
    from core.flows.ratelimit_stress import StressTarget
    from simulator.app import create_app
    from simulator.embedded import SANDBOX_EPOCH, EmbeddedExchange
    from simulator.exchange import DEFAULT_ACCOUNT, Exchange
    from simulator.ratelimits import Tier

    clock = LoopClock(SANDBOX_EPOCH)
    exchange = Exchange.create(clock)
    key = exchange.create_api_key(DEFAULT_ACCOUNT)
    return StressTarget(
        base_url=EmbeddedExchange.base_url,
        credentials=Credentials(api_key=key.key, api_secret=key.secret),
        clock=clock,
        transport=httpx.ASGITransport(app=create_app(exchange, tier=Tier(tier))),
    )


async def served_target(url: str, tier: str) -> StressTarget:
    """A served sandbox, never Kraken: a stress run is meant to break limits."""
    from cli.options import checked_url
    from cli.wiring import is_loopback
    from core.domain.clock import SystemClock
    from core.domain.errors import ConfigError, InputError
    from core.exchange import Credentials
    from core.exchange.sandbox_control import SandboxControl
    from core.exchange.signing import KEY_ENV, KEY_FILE_ENV, SECRET_ENV
    from core.flows.ratelimit_stress import StressTarget

    checked_url(url)
    if not is_loopback(url):
        raise InputError(f"{url} is not a loopback address: ratelimit-stress only runs against a local sandbox")
    credentials = Credentials.from_env()
    if credentials is None:
        raise ConfigError(
            f"--url needs the sandbox's key pair: set {KEY_FILE_ENV} to the key file `tg sim serve` wrote "
            f"(or {KEY_ENV} and {SECRET_ENV})"
        )
    control = SandboxControl(url)
    try:
        limits = (await control.state())["rate_limits"]
    finally:
        await control.aclose()
    if limits is None:
        raise InputError(f"the sandbox at {url} enforces no rate limits: serve it with --tier {tier}")
    if limits["tier"] != tier:
        raise InputError(f"the sandbox at {url} enforces the {limits['tier']} tier: pass --tier {limits['tier']}")
    return StressTarget(base_url=url, credentials=credentials, clock=SystemClock())


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr, so --json output on stdout stays one object."""
    from cli.render import progress_bar

    with progress_bar() as progress:
        task = progress.add_task("requests", total=total)
        yield lambda: progress.advance(task)


def _render(report: StressReport, *, as_json: bool, simulated: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from cli.render import print_json

    summary: dict[str, Any] = report.to_dict()
    for error in report.errors[:5]:
        typer.echo(f"failed call: {error}", err=True)
    if len(report.errors) > 5:
        typer.echo(f"failed call: ... and {len(report.errors) - 5} more", err=True)
    if as_json:
        print_json(summary)
        return
    plan = report.plan
    table = Table(show_header=False, title=f"ratelimit-stress: {plan.tier}, {plan.mix}, limiter {plan.limiter}")
    table.add_column()
    table.add_column()
    rate = "{:.4f}/s".format
    rows = [
        ("requests", str(summary["requests"])),
        ("violations", ("[green]0[/]" if not report.violations else f"[red]{report.violations}[/]")),
        ("elapsed", f"{summary['elapsed_s']:.1f} s" + (" (simulated)" if simulated else "")),
        ("allowed calls", f"{report.allowed_calls:.0f} in that time (burst and decay)"),
        ("achieved rate", "-" if report.achieved_rate is None else rate(report.achieved_rate)),
        ("allowed rate", rate(report.allowed_rate)),
        ("utilization", "-" if report.utilization is None else f"{report.utilization:.1%}"),
        (
            "wait p50 / p99 / max",
            f"{summary['wait_p50_s']:.2f} / {summary['wait_p99_s']:.2f} / {summary['wait_max_s']:.2f} s",
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console(highlight=False).print(table)
