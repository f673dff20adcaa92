"""The served sandbox (`tg sim serve`: uvicorn over simulator.app) against the least an
HTTP endpoint can do, a trivial ASGI app answering a constant JSON body on the same
uvicorn with the same settings (simulator.server.SandboxServer), each in its own process,
loaded by concurrent clients from a third process:

- private: signed AddOrder + QueryOrders round trips (API-Key / API-Sign as Kraken's
  clients send them, a key per connection, its nonces increasing), in round trips/s;
- ticker:  GET /0/public/Ticker?pair=XBTUSD, in requests/s.

    python benchmarks/bench_served.py [--concurrency 8] [--seconds 2] [--rounds 5]

Rounds interleave the two servers; the medians and their ratios (sandbox / trivial) are
printed. Targets (issue 14): private >= 0.5x, ticker >= 0.7x. Beside them, each server
process's CPU time per call (from /proc, Linux), which other load on a shared machine
disturbs far less than throughput. The sandbox runs on real time (its market moves, so
matching runs) without rate limits, its resting orders piling up round after round as
a busy account's would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from bench_simulator import ORDER, trivial_app

from simulator.auth import sign
from simulator.server import SandboxServer, bind, sandbox_server

KeyPairs = list[tuple[str, str]]

_KINDS = ("private", "ticker")


def serve(target: str, keys: KeyPairs) -> None:
    """The server process: prints its URL, then serves until terminated."""
    server = (
        sandbox_server("127.0.0.1", 0, tier=None, keys=keys)
        if target == "sandbox"
        else SandboxServer(trivial_app, bind("127.0.0.1", 0))
    )
    print(server.url, flush=True)
    server.run()


class Signer:
    """One API key's private calls, signed as Kraken's clients sign them."""

    def __init__(self, key: str, secret: str) -> None:
        self.key = key
        self.secret = secret
        self.nonce = time.time_ns() // 1_000  # above any nonce an earlier round used

    def request(self, method: str, params: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
        self.nonce += 1
        path = f"/0/private/{method}"
        body = urlencode({"nonce": self.nonce, **params}).encode()
        headers = {
            "API-Key": self.key,
            "API-Sign": sign(self.secret, path, str(self.nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return path, body, headers


async def load(url: str, kind: str, keys: KeyPairs, seconds: float) -> dict[str, float]:
    """The load process: one connection per key, each sending its calls back to back
    for `seconds`; what it completed."""
    done = 0
    deadline = 0.0

    async def private(http: httpx.AsyncClient, signer: Signer) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            path, body, headers = signer.request("AddOrder", ORDER)
            placed = _result(await http.post(path, content=body, headers=headers))
            path, body, headers = signer.request("QueryOrders", {"txid": placed["txid"][0]})
            _result(await http.post(path, content=body, headers=headers))
            done += 1

    async def ticker(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            _result(await http.get("/0/public/Ticker", params={"pair": "XBTUSD"}))
            done += 1

    limits = httpx.Limits(max_connections=len(keys), max_keepalive_connections=len(keys))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        started = time.perf_counter()
        deadline = started + seconds
        if kind == "private":
            await asyncio.gather(*(private(http, Signer(key, secret)) for key, secret in keys))
        else:
            await asyncio.gather(*(ticker(http) for _ in keys))
        elapsed = time.perf_counter() - started
    return {"done": done, "seconds": elapsed}


def _result(response: httpx.Response) -> Any:
    answer = response.json()
    if response.status_code != 200 or answer["error"]:
        raise RuntimeError(f"{response.request.url.path}: HTTP {response.status_code} {answer['error']}")
    return answer["result"]


def _script(*arguments: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *arguments]


def start_server(target: str, key_file: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        _script("--serve", target, "--key-file", str(key_file)), stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        process.kill()
        raise SystemExit(f"the {target} server did not start")
    return process, url


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(url: str, kind: str, key_file: Path, seconds: float, server: int) -> tuple[float, float]:
    """Completed round trips (private) or requests (ticker) per second, and the server
    process's CPU seconds per one of them."""
    before = cpu_seconds(server)
    output = subprocess.run(
        _script("--load", url, "--kind", kind, "--key-file", str(key_file), "--seconds", str(seconds)),
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        raise SystemExit(f"load on {url} failed:\n{output.stderr}")
    used = cpu_seconds(server) - before
    figures = json.loads(output.stdout)
    done = float(figures["done"])
    return done / float(figures["seconds"]), used / done


def main(concurrency: int, seconds: float, rounds: int) -> None:
    keys = [(f"bench-{index}", base64.b64encode(secrets.token_bytes(64)).decode()) for index in range(concurrency)]
    with tempfile.TemporaryDirectory() as folder:
        key_file = Path(folder) / "keys.json"
        key_file.touch(mode=0o600)
        key_file.write_text(json.dumps(keys))
        servers = {target: start_server(target, key_file) for target in ("trivial", "sandbox")}
        try:
            rates: dict[tuple[str, str], list[float]] = {(t, k): [] for t in servers for k in _KINDS}
            costs: dict[tuple[str, str], list[float]] = {(t, k): [] for t in servers for k in _KINDS}
            for _ in range(rounds):
                for kind in _KINDS:
                    for target, (process, url) in servers.items():
                        rate, cost = run_load(url, kind, key_file, seconds, process.pid)
                        rates[target, kind].append(rate)
                        costs[target, kind].append(cost)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
    print(f"{concurrency} concurrent connections from another process, {rounds} rounds x {seconds:g} s, medians")
    print(f"{'':<36}{'per second':^36}{'server CPU us each':^30}")
    print(
        f"{'call':<36}{'sandbox':>10}{'trivial':>10}{'ratio':>8}{'target':>8}{'sandbox':>10}{'trivial':>10}{'ratio':>8}"
    )
    for kind, label, goal in (
        ("private", "AddOrder+QueryOrders round trips", 0.5),
        ("ticker", "Ticker requests", 0.7),
    ):
        sandbox, trivial = (statistics.median(rates[t, kind]) for t in ("sandbox", "trivial"))
        sandbox_cpu, trivial_cpu = (statistics.median(costs[t, kind]) * 1e6 for t in ("sandbox", "trivial"))
        print(
            f"{label:<36}{sandbox:>10.0f}{trivial:>10.0f}{sandbox / trivial:>8.2f}{goal:>8.2f}"
            f"{sandbox_cpu:>10.0f}{trivial_cpu:>10.0f}{trivial_cpu / sandbox_cpu:>8.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", choices=("trivial", "sandbox"), help=argparse.SUPPRESS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=_KINDS, default="private", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve or arguments.load:
        pairs = [(key, secret) for key, secret in json.loads(arguments.key_file.read_text())]
        if arguments.serve:
            serve(arguments.serve, pairs)
        else:
            print(json.dumps(asyncio.run(load(arguments.load, arguments.kind, pairs, arguments.seconds))))
    else:
        main(arguments.concurrency, arguments.seconds, arguments.rounds)
