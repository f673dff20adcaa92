"""The clock abstraction and layered settings."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.clock import SystemClock, VirtualClock
from core.domain.config import describe, load_settings
from core.domain.errors import ConfigError


class TestVirtualClock:
    async def test_moves_only_when_told(self) -> None:
        clock = VirtualClock(start=1000.0)
        assert clock.time() == 1000.0 and clock.monotonic() == 0.0
        clock.advance(2.5)
        await clock.sleep(7.5)
        assert clock.time() == 1010.0 and clock.monotonic() == 10.0

    def test_never_goes_backwards(self) -> None:
        clock = VirtualClock(start=1000.0)
        with pytest.raises(ValueError):
            clock.advance(-1)
        clock.set_time(900.0)
        assert clock.time() == 1000.0
        clock.set_time(1060.0)
        assert clock.time() == 1060.0


@pytest.mark.looptime
async def test_system_clock_follows_the_event_loop() -> None:
    clock = SystemClock()
    start = clock.monotonic()
    await asyncio.gather(clock.sleep(30), clock.sleep(30))
    assert clock.monotonic() - start == pytest.approx(30)


class TestSettings:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.chdir(tmp_path)
        settings = load_settings()
        assert settings.risk.risk_per_trade == Decimal("0.01")
        assert settings.db_path.name == "tg.db"

    def test_file_then_environment_then_flags(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        config = tmp_path / "tg.toml"
        config.write_text('db = "from-file.db"\n[risk]\nrisk_per_trade = "0.02"\nmin_confidence = 0.7\n')
        monkeypatch.setenv("TG_RISK__MIN_CONFIDENCE", "0.8")
        settings = load_settings(config)
        assert settings.risk.risk_per_trade == Decimal("0.02")  # file over default
        assert settings.risk.min_confidence == 0.8  # environment over file
        assert settings.db_path == Path("from-file.db")
        assert load_settings(config, db=tmp_path / "flag.db").db_path == tmp_path / "flag.db"  # flag over all

    def test_tg_db_chooses_the_file(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("TG_DB", str(tmp_path / "x.db"))
        assert load_settings().db_path == tmp_path / "x.db"

    def test_a_postgresql_url_chooses_the_server_and_keeps_the_spool_local(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("TG_DATA_DIR", str(tmp_path / "data"))
        url = "postgresql://tg:s3cret@db.example:5432/trading"
        settings = load_settings(db=url)
        assert settings.db_location == url
        assert settings.db_path.parent == tmp_path / "data"  # the spool and sandbox state beside it
        assert {k: v for k, v, _ in describe(db=url)}["db"] == "postgresql://tg:***@db.example:5432/trading"

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[risk\n", "not valid TOML"),
            ("[risk]\nrisk_per_trade = 5\n", "invalid setting risk.risk_per_trade"),
            ("surprise = 1\n", "unknown setting surprise"),
            ("[risk]\nmin_confidnce = 0.99\n", "unknown setting risk.min_confidnce in"),
            ("[simulator]\nseed = -1\n", "invalid setting simulator.seed"),
        ],
    )
    def test_bad_files_say_what_is_wrong(self, tmp_path: Path, text: str, message: str) -> None:
        config = tmp_path / "tg.toml"
        config.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(config)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read config file"):
            load_settings(tmp_path / "absent.toml")

    def test_bad_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TG_RISK__RISK_PER_TRADE", "lots")
        with pytest.raises(ConfigError, match="TG_RISK__RISK_PER_TRADE"):
            load_settings()


class TestStrictSettings:
    def test_a_typo_in_the_file_names_the_nearest_key(self, tmp_path: Path) -> None:
        config = tmp_path / "tg.toml"
        config.write_text("[risk]\nmin_confidnce = 0.99\n")
        with pytest.raises(ConfigError, match="did you mean risk.min_confidence"):
            load_settings(config)

    @pytest.mark.parametrize(
        ("name", "nearest"),
        [("TG_RISK__MIN_CONFIDNCE", "TG_RISK__MIN_CONFIDENCE"), ("TG_SIMULATR__SEED", "TG_SIMULATOR__SEED")],
    )
    def test_a_typo_in_the_environment_names_the_nearest_variable(
        self, monkeypatch: pytest.MonkeyPatch, name: str, nearest: str
    ) -> None:
        monkeypatch.setenv(name, "1")
        with pytest.raises(ConfigError, match=f"{name} is not a tg setting; did you mean {nearest}"):
            load_settings()

    def test_the_keys_and_the_file_are_not_settings_but_are_allowed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TG_KRAKEN_API_KEY", "k")
        monkeypatch.setenv("TG_SANDBOX_TOKEN", "t" * 20)
        load_settings()

    def test_seeds_are_checked_alike_in_the_file_and_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("TG_SIMULATOR__SEED", "-1")
        with pytest.raises(ConfigError, match="SIMULATOR__SEED"):
            load_settings()

    def test_the_data_directory_follows_xdg_data_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
        assert load_settings().db_path == tmp_path / "tg" / "tg.db"

    def test_describe_says_where_each_setting_came_from(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        config = tmp_path / "tg.toml"
        config.write_text("[risk]\nmin_confidence = 0.7\n")
        monkeypatch.setenv("TG_RISK__MAX_OPEN_POSITIONS", "5")
        sources = {key: (value, source) for key, value, source in describe(config, db=tmp_path / "x.db")}
        assert sources["risk.min_confidence"] == (0.7, f"file {config}")
        assert sources["risk.max_open_positions"] == (5, "environment")
        assert sources["db"] == (str(tmp_path / "x.db"), "flag")
        assert sources["risk.min_reward_risk"][1] == "default"


def test_one_task_interval_keeps_the_other_tasks_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TG_COORDINATOR__INTERVALS_S__TRADING_DECISION", "7200")
    config = tmp_path / "tg.toml"
    config.write_text("[coordinator.timeouts_s]\nregime_detection = 200\n")
    coordinator = load_settings(config).coordinator
    assert (coordinator.intervals_s.trading_decision, coordinator.intervals_s.technical_analysis) == (7200, 60)
    assert (coordinator.timeouts_s.regime_detection, coordinator.timeouts_s.trading_decision) == (200, 600)
