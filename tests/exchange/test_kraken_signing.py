"""API-Sign against Kraken's published example, credentials that never show, nonces
that only go up."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.domain.clock import VirtualClock
from core.domain.errors import ConfigError
from core.exchange import Credentials, NonceSource, sign
from tests.exchange.kraken_fakes import API_KEY, SECRET, START

PATH = "/0/private/AddOrder"
NONCE = "1616492376594"
POSTDATA = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
SIGNATURE = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def test_sign_matches_krakens_published_example() -> None:
    assert sign(PATH, NONCE, POSTDATA, SECRET) == SIGNATURE


def test_sign_takes_the_body_as_bytes_too() -> None:
    assert sign(PATH, NONCE, POSTDATA.encode(), SECRET) == SIGNATURE


def test_sign_covers_the_path_the_nonce_and_the_body() -> None:
    assert sign("/0/private/CancelOrder", NONCE, POSTDATA, SECRET) != SIGNATURE
    assert sign(PATH, "1616492376595", POSTDATA, SECRET) != SIGNATURE
    assert sign(PATH, NONCE, POSTDATA.replace("1.25", "12.5"), SECRET) != SIGNATURE


class TestCredentials:
    def test_repr_and_str_hide_the_secret_and_most_of_the_key(self) -> None:
        credentials = Credentials(api_key=API_KEY, api_secret=SECRET)
        assert repr(credentials) == str(credentials) == f"{credentials}" == "Credentials(api_key=k3yP…)"
        assert repr([credentials]) == "[Credentials(api_key=k3yP…)]"

    def test_a_secret_that_is_not_base64_is_refused_without_echoing_it(self) -> None:
        with pytest.raises(ConfigError, match="not valid base64") as caught:
            Credentials(api_key=API_KEY, api_secret="not*base64!")
        assert "not*base64!" not in str(caught.value)

    def test_from_env_reads_the_key_and_secret(self) -> None:
        env = {"TG_KRAKEN_API_KEY": API_KEY, "TG_KRAKEN_API_SECRET": SECRET}
        assert Credentials.from_env(env) == Credentials(API_KEY, SECRET)

    def test_from_env_without_any_setting_is_none(self) -> None:
        assert Credentials.from_env({"TG_KRAKEN_API_KEY": ""}) is None

    @pytest.mark.parametrize(
        ("env", "missing"),
        [
            ({"TG_KRAKEN_API_KEY": API_KEY}, "TG_KRAKEN_API_SECRET is not"),
            ({"TG_KRAKEN_API_SECRET": SECRET}, "TG_KRAKEN_API_KEY is not"),
        ],
    )
    def test_from_env_with_half_the_pair_says_what_is_missing(self, env: dict[str, str], missing: str) -> None:
        with pytest.raises(ConfigError, match=missing) as caught:
            Credentials.from_env(env)
        assert SECRET not in str(caught.value)

    def test_from_env_reads_a_private_key_file(self, tmp_path: Path) -> None:
        key_file = tmp_path / "kraken.key"
        key_file.write_text(f"{API_KEY}\n{SECRET}\n")
        key_file.chmod(0o600)
        assert Credentials.from_env({"TG_KRAKEN_KEY_FILE": str(key_file)}) == Credentials(API_KEY, SECRET)

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o700])
    def test_from_env_refuses_a_key_file_readable_beyond_its_owner(self, tmp_path: Path, mode: int) -> None:
        key_file = tmp_path / "kraken.key"
        key_file.write_text(f"{API_KEY}\n{SECRET}\n")
        key_file.chmod(mode)
        with pytest.raises(ConfigError, match=f"mode {mode:04o}.*chmod 600") as caught:
            Credentials.from_env({"TG_KRAKEN_KEY_FILE": str(key_file)})
        assert SECRET not in str(caught.value) and API_KEY not in str(caught.value)

    def test_from_env_refuses_a_key_file_without_two_lines(self, tmp_path: Path) -> None:
        key_file = tmp_path / "kraken.key"
        key_file.write_text(f"{API_KEY}\n")
        key_file.chmod(0o400)
        with pytest.raises(ConfigError, match="exactly two lines"):
            Credentials.from_env({"TG_KRAKEN_KEY_FILE": str(key_file)})

    def test_from_env_refuses_a_key_file_not_utf8(self, tmp_path: Path) -> None:
        """It escaped as UnicodeDecodeError: tg sim serve --key-file called it a bug in tg."""
        key_file = tmp_path / "kraken.key"
        key_file.write_bytes(b"\xff\xfe\x00key\n")
        key_file.chmod(0o600)
        with pytest.raises(ConfigError, match="not UTF-8 text"):
            Credentials.from_env({"TG_KRAKEN_KEY_FILE": str(key_file)})

    def test_from_env_refuses_a_missing_key_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read key file"):
            Credentials.from_env({"TG_KRAKEN_KEY_FILE": str(tmp_path / "absent")})

    def test_from_env_refuses_a_key_file_and_variables_together(self, tmp_path: Path) -> None:
        env = {"TG_KRAKEN_KEY_FILE": str(tmp_path / "k"), "TG_KRAKEN_API_KEY": API_KEY}
        with pytest.raises(ConfigError, match="both"):
            Credentials.from_env(env)


class _SteppingClock(VirtualClock):
    """A wall clock an administrator (or NTP) can set back."""

    def step_back(self, seconds: float) -> None:
        self._epoch -= seconds


class TestNonceSource:
    def test_nonces_are_wall_clock_microseconds(self) -> None:
        assert NonceSource(VirtualClock(START)).next() == int(START * 1_000_000)

    def test_nonces_within_one_microsecond_still_increase(self) -> None:
        nonces = NonceSource(VirtualClock(START))
        issued = [nonces.next() for _ in range(1000)]
        assert issued == list(range(issued[0], issued[0] + 1000))

    def test_a_clock_set_back_does_not_lower_the_nonce(self) -> None:
        clock = _SteppingClock(START)
        nonces = NonceSource(clock)
        before = nonces.next()
        clock.step_back(3600)
        assert nonces.next() == before + 1

    def test_a_restarted_process_starts_above_the_previous_ones_nonces(self) -> None:
        clock = VirtualClock(START)
        first_run = NonceSource(clock)
        last_of_first_run = [first_run.next() for _ in range(500)][-1]
        clock.advance(0.01)  # a restart takes longer than 500 microseconds
        assert NonceSource(clock).next() > last_of_first_run

    def test_resync_jumps_a_second_ahead_of_the_wall_clock(self) -> None:
        nonces = NonceSource(VirtualClock(START))
        nonces.next()
        nonces.resync()
        assert nonces.next() == int(START * 1_000_000) + 1_000_000 + 1
