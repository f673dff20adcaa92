"""docs/sandbox.md cannot drift from the code: every control route, every fault with
its defaults and every option with its default is in it, as the code defines them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.app import CONTROL_ROUTES as ROUTES
from simulator.app import UI_PATHS
from simulator.faults import CATALOG, option_docs, rule_option_docs

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")


def fault_section(name: str) -> str:
    """The text from a fault's heading to the next heading."""
    match = re.search(rf"^#### `{re.escape(name)}`\n(.*?)(?=^#)", DOC, re.S | re.M)
    assert match, f"docs/sandbox.md has no '#### `{name}`' section"
    return match.group(1)


def hits_line(name: str) -> str:
    defaults = CATALOG[name].defaults
    times = "every time" if defaults.times is None else f"times={defaults.times}"
    return f"Hits: endpoint={defaults.endpoint}, match={defaults.match}, {times}."


def option_line(name: str, default: str, accepts: str) -> str:
    return f"- `{name}`" + (f" (default `{default}`)" if default else "") + f": {accepts}"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_every_control_route_has_its_section(route: tuple[str, str]) -> None:
    method, path = route
    assert f"### `{method} {path}`" in DOC


def test_the_doc_names_no_route_the_plane_does_not_serve() -> None:
    named = set(re.findall(r"^### `(GET|POST|DELETE) (/_sandbox/[a-z-]*)`", DOC, re.M))
    assert named == set(ROUTES) | {("GET", "/_sandbox/ui")}
    assert "/_sandbox/ui" in UI_PATHS


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_fault_is_documented_with_its_defaults_and_options(name: str) -> None:
    section = fault_section(name)
    assert CATALOG[name].defaults.summary in section
    assert hits_line(name) in section
    for option in option_docs(CATALOG[name].params_model):
        assert option_line(option.name, option.default, option.accepts) in section


def test_the_doc_lists_no_fault_the_catalog_lacks() -> None:
    assert set(re.findall(r"^#### `([a-z-]+)`", DOC, re.M)) == set(CATALOG)


def test_every_rule_option_is_documented() -> None:
    for option in rule_option_docs():
        assert option_line(option.name, option.default, option.accepts) in DOC


def test_readme_links_the_reference() -> None:
    assert "(docs/sandbox.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
