"""`tg ratelimit-stress` through Typer's runner, in-process on virtual time: counts and
ratios of what the sandbox refused and accepted, never wall-clock speed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from simulator.server import serving

pytestmark = pytest.mark.integration

runner = CliRunner()
KEYS = {
    "requests",
    "violations",
    "elapsed_s",
    "achieved_rate",
    "allowed_rate",
    "allowed_calls",
    "utilization",
    "wait_p50_s",
    "wait_p99_s",
    "wait_max_s",
    "tier",
    "mix",
    "limiter",
}
ALLOWED = {  # Kraken's sustained allowance per tier and mix, calls per second
    ("starter", "query"): 0.33,
    ("starter", "orders"): 2 / 9,
    ("starter", "mixed"): 3 / 9,
    ("intermediate", "query"): 0.5,
    ("intermediate", "orders"): 2 * 2.34 / 9,
    ("intermediate", "mixed"): 3 * 2.34 / 9,
    ("pro", "query"): 1.0,
    ("pro", "orders"): 2 * 3.75 / 9,
    ("pro", "mixed"): 3 * 3.75 / 9,
}


def stress(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["ratelimit-stress", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(("tier", "mix"), sorted(ALLOWED))
def test_the_kraken_limiter_is_never_refused_and_uses_the_allowed_rate(tier: str, mix: str) -> None:
    code, report = stress("--tier", tier, "--mix", mix, "--requests", "1000")

    assert code == 0, report
    assert set(report) == KEYS
    assert (report["tier"], report["mix"], report["limiter"], report["requests"]) == (tier, mix, "kraken", 1000)
    assert report["violations"] == 0
    assert report["allowed_rate"] == pytest.approx(ALLOWED[tier, mix])
    assert report["achieved_rate"] == pytest.approx(1000 / report["elapsed_s"])
    assert 0.95 <= report["utilization"] <= 1.0  # of what Kraken allows in that time, burst included
    assert report["utilization"] == pytest.approx(1000 / report["allowed_calls"])
    assert 0 <= report["wait_p50_s"] <= report["wait_p99_s"] <= report["wait_max_s"]


@pytest.mark.parametrize("mix", ["query", "orders", "mixed"])
def test_without_a_limiter_the_sandbox_visibly_refuses(mix: str) -> None:
    code, report = stress("--limiter", "none", "--mix", mix, "--requests", "200")

    assert code == 0  # refusals are the expected outcome here, not a failure
    assert report["violations"] > 100
    assert report["wait_max_s"] == 0.0


def test_a_plain_token_bucket_at_the_configured_rate_is_refused_and_fails() -> None:
    result = runner.invoke(app, ["ratelimit-stress", "--limiter", "token-bucket", "--requests", "300", "--json"])

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["limiter"] == "token-bucket"
    assert report["violations"] > 0


def test_the_table_names_every_figure() -> None:
    result = runner.invoke(app, ["ratelimit-stress", "--requests", "30", "--tier", "pro"])

    assert result.exit_code == 0, result.output
    for label in ("violations", "elapsed", "achieved rate", "allowed rate", "utilization", "wait p50 / p99 / max"):
        assert label in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "gold"], "--tier must be one of starter, intermediate, pro, not 'gold'"),
        (["--mix", "bulk"], "--mix must be one of query, orders, mixed, not 'bulk'"),
        (["--limiter", "leaky"], "--limiter must be one of kraken, token-bucket, none, not 'leaky'"),
        (["--requests", "0"], "--requests must be at least 1, got 0"),
        (["--concurrency", "-1"], "--concurrency must be at least 1, got -1"),
        (["--url", "https://api.kraken.com"], "is not a loopback address"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["ratelimit-stress", *args])

    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line


def test_a_served_sandbox_over_real_time() -> None:
    key, secret = "stressKey", "c3RyZXNzIHNlY3JldCBmb3IgdGhlIHNlcnZlZCBzYW5kYm94"
    env = {"TG_KRAKEN_API_KEY": key, "TG_KRAKEN_API_SECRET": secret}
    with serving(tier="pro", keys=[(key, secret)]) as sandbox:
        ok = runner.invoke(
            app,
            [
                "ratelimit-stress",
                "--url",
                sandbox.url,
                "--tier",
                "pro",
                "--requests",
                "12",
                "--concurrency",
                "4",
                "--json",
            ],
            env=env,
        )
        wrong_tier = runner.invoke(app, ["ratelimit-stress", "--url", sandbox.url, "--tier", "starter"], env=env)

    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert (report["requests"], report["violations"], report["tier"]) == (12, 0, "pro")
    assert report["wait_max_s"] == 0.0  # within pro's burst of 19: nothing waits
    assert wrong_tier.exit_code == 2
    assert "enforces the pro tier: pass --tier pro" in wrong_tier.stderr
