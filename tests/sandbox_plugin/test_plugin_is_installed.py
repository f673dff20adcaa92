"""Installing tg is all it takes: pytest finds the fixtures through the `pytest11`
entry point, in a project that imports nothing of tg's."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration


def test_a_project_of_its_own_gets_the_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.kraken_sandbox(seed=9)
        def test_ticker(kraken_sandbox):
            answer = httpx.get(kraken_sandbox.url + "/0/public/Ticker", params={"pair": "XBTUSD"}).json()
            assert answer["error"] == [] and "XXBTZUSD" in answer["result"]
            assert kraken_sandbox.control.state()["seed"] == 9

        def test_session(kraken_sandbox_reset):
            assert kraken_sandbox_reset.control.faults() == []
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_a_misspelt_option_or_a_missing_scenario_is_one_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kraken_sandbox(sed=9)
        def test_misspelt(kraken_sandbox):
            raise AssertionError("the fixture must refuse the marker before the test runs")

        @pytest.mark.kraken_sandbox(scenario="nowhere.toml")
        def test_missing(kraken_sandbox):
            raise AssertionError("the fixture must refuse the marker before the test runs")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*@pytest.mark.kraken_sandbox: unknown sed; it takes seed, tier, *"])
    result.stdout.fnmatch_lines(["kraken_sandbox: cannot read the scenario *nowhere.toml: No such file or directory"])
    assert "Traceback" not in result.stdout.str()
