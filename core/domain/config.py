"""Settings: defaults < an optional TOML file < TG_* environment variables.

Nested fields are set from the environment with a double underscore, for example
TG_RISK__RISK_PER_TRADE=0.005 or TG_KRAKEN__RATE_LIMIT__TIER=pro. The TOML file is
named by TG_CONFIG (or `--config`), else ./tg.toml when it exists.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from core.domain.errors import ConfigError

Tier = Literal["starter", "intermediate", "pro"]

NOT_SETTINGS = frozenset(
    {"TG_CONFIG", "TG_KRAKEN_API_KEY", "TG_KRAKEN_API_SECRET", "TG_KRAKEN_KEY_FILE", "TG_SANDBOX_TOKEN"}
)
"""TG_* variables that are read on their own, not settings (the file, keys, a token)."""


class Section(BaseModel):
    """A table of settings: a key it does not know is a mistake (a typo that would
    silently change nothing), refused with the nearest valid key. No setting is infinite
    (a timeout, a deadline or a wait of inf would never end), nor NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RateLimitSettings(Section):
    calls_per_minute: int = Field(60, gt=0)
    order_calls_per_minute: int = Field(60, gt=0)
    tier: Tier = "starter"


class KrakenSettings(Section):
    """Where the exchange is. No URL means the embedded sandbox. Keys are not settings:
    they come from TG_KRAKEN_API_KEY / TG_KRAKEN_API_SECRET (core.exchange.Credentials)."""

    url: str | None = None
    live: bool = False
    timeout_s: float = Field(10.0, gt=0)
    rate_limit: RateLimitSettings = RateLimitSettings()


class RiskSettings(Section):
    risk_per_trade: Decimal = Field(Decimal("0.01"), gt=0, le=Decimal("0.1"))
    max_position_pct: Decimal = Field(Decimal("0.25"), gt=0, le=1)
    entry_slippage_pct: Decimal = Field(Decimal("0.005"), ge=0, le=Decimal("0.1"))
    """Room a market entry keeps, beside its fee, for the spread and slippage it pays:
    the exchange refuses a buy whose worst cost is above the quote the account holds."""
    min_confidence: float = Field(0.55, ge=0, le=1)
    min_reward_risk: Decimal = Field(Decimal("1.5"), ge=0)
    min_stop_distance_pct: Decimal = Field(Decimal("0.002"), ge=0)
    max_stop_distance_pct: Decimal = Field(Decimal("0.10"), gt=0)
    max_open_positions: int = Field(3, ge=1)
    max_leverage: Decimal = Field(Decimal("1"), ge=1)  # spot: no leverage
    max_total_exposure_pct: Decimal = Field(Decimal("0.75"), gt=0)
    max_correlated_exposure_pct: Decimal = Field(Decimal("0.5"), gt=0)  # positions in the same base asset
    max_daily_loss_pct: Decimal = Field(Decimal("0.03"), gt=0)
    max_weekly_loss_pct: Decimal = Field(Decimal("0.07"), gt=0)
    max_drawdown_pct: Decimal = Field(Decimal("0.15"), gt=0)
    losing_streak: int = Field(3, ge=1)  # losses in a row that raise the bar and start a cooldown
    losing_streak_confidence_step: float = Field(0.1, ge=0, le=1)
    cooldown_after_loss_s: float = Field(3600.0, ge=0)


class ExecutionSettings(Section):
    stop_retry_deadline_s: float = Field(10.0, gt=0)
    stop_max_attempts: int = Field(4, ge=1)
    confirm_attempts: int = Field(6, ge=1)  # waits 0.5, 1, 2, 4, 8 s: an order slow to show gets 15 s
    keep_unfilled_remainder: bool = False
    protection: Literal["orders", "conditional_close"] = "orders"
    """orders: a stop-loss order placed after the entry fills. conditional_close: the stop
    rides on the entry as Kraken's close[ordertype], opened by the exchange as it fills."""
    rate_limit_backoff_s: float = Field(3.0, gt=0)  # a starter key's counter sheds one call in ~3 s
    lease_wait_s: float = Field(60.0, ge=0)
    """How long a trade waits for another tg process working on the same asset of the account."""


Provider = Literal["offline", "openai", "anthropic"]


class ConflictSettings(Section):
    """When the agents disagree enough to ask the conflict resolver, and how far it may go."""

    min_consensus: float = Field(0.6, ge=0, le=1)  # a winning share below this is low consensus
    max_volatility: float = Field(0.05, gt=0)  # ATR / price above this is high volatility in any regime
    timeout_s: float = Field(60.0, gt=0)  # for the resolver's answer; past it the ruling is wait
    min_size_factor: Decimal = Field(Decimal("0.25"), gt=0, le=1)  # the smallest a modify may shrink a trade


class DegradationSettings(Section):
    """How many failures (successes) in a row step the coordinator's level down (up)."""

    failures_per_step: int = Field(3, ge=1)
    successes_per_step: int = Field(3, ge=1)
    reduced_size_factor: Decimal = Field(Decimal("0.5"), gt=0, le=1)


TaskKey = Literal["technical_analysis", "regime_detection", "trading_decision"]


class TaskSeconds(Section):
    """A number of seconds for each of the coordinator's tasks."""

    technical_analysis: float = Field(gt=0)
    regime_detection: float = Field(gt=0)
    trading_decision: float = Field(gt=0)

    def of(self, task: str) -> float:
        seconds: float = getattr(self, task)
        return seconds


class CoordinatorConfig(Section):
    """The schedule (symbols, intervals, which tasks run on it), time limits, conflict
    rules and degradation steps.

    The default limits leave room for a remote model's answer timeout at each of the
    decision's four sequential steps (TA, regime, vote, conflict ruling).
    """

    symbols: list[str] = []
    scheduled: list[TaskKey] = ["technical_analysis", "regime_detection", "trading_decision"]
    """The tasks the schedule runs (a trading decision runs its own analysis first)."""
    intervals_s: TaskSeconds = TaskSeconds(technical_analysis=60, regime_detection=300, trading_decision=3600)
    timeouts_s: TaskSeconds = TaskSeconds(technical_analysis=150, regime_detection=300, trading_decision=600)
    conflicts: ConflictSettings = ConflictSettings()
    degradation: DegradationSettings = DegradationSettings()

    @model_validator(mode="before")
    @classmethod
    def _task_seconds_over_defaults(cls, values: Any) -> Any:
        """One task's seconds set alone ([coordinator.intervals_s] trading_decision = 7200,
        or its TG_* variable) keeps the other tasks' defaults, as every other setting does."""
        if not isinstance(values, dict):
            return values
        for name in ("intervals_s", "timeouts_s"):
            given = values.get(name)
            if isinstance(given, dict):
                values = {**values, name: {**cls.model_fields[name].default.model_dump(), **given}}
        return values


class ModelSlot(Section):
    """Who answers one model slot.

    provider "offline" runs a deterministic rule set (model: its name, default the
    slot's own); "openai" is any OpenAI-compatible chat-completions API (OpenAI,
    DeepSeek, xAI, a local Ollama: set base_url); "anthropic" is Anthropic's Messages
    API. `api_key_env` names the environment variable that holds the key: the key
    itself is never a setting, so it never lands in a config file or a dump.
    """

    provider: Provider = "offline"
    model: str | None = None
    base_url: str | None = None  # default: https://api.openai.com/v1 or https://api.anthropic.com
    api_key_env: str | None = None  # None: send no key (a local Ollama)
    timeout_s: float = Field(30.0, gt=0)  # per HTTP request
    max_retries: int = Field(3, ge=0)  # on 429, 5xx, timeouts and dropped connections
    max_tokens: int = Field(1024, gt=0)
    temperature: float = Field(0.0, ge=0, le=2)

    @model_validator(mode="after")
    def _remote_needs_a_model(self) -> ModelSlot:
        if self.provider != "offline" and not self.model:
            raise ValueError(f"a {self.provider} slot needs `model` (the provider's model name)")
        return self


class ModelPrice(Section):
    """USD per million tokens, as the provider's price list gives it."""

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


class ModelRateLimit(Section):
    requests_per_minute: float = Field(60.0, gt=0)
    burst: int = Field(10, ge=1)


class ModelSettings(Section):
    """The nine model slots, the vote's quorum, prices and per-provider rate limits.

    Every slot defaults to its offline model, so nothing needs a key or a network.
    `rate_limits` is keyed by base URL: the slots sharing a provider share its bucket.
    A model missing from `prices` costs 0 (it is unpriced, not free).
    """

    trader_1: ModelSlot = ModelSlot()
    trader_2: ModelSlot = ModelSlot()
    trader_3: ModelSlot = ModelSlot()
    trader_4: ModelSlot = ModelSlot()
    trader_5: ModelSlot = ModelSlot()
    trader_6: ModelSlot = ModelSlot()
    ta: ModelSlot = ModelSlot()
    regime: ModelSlot = ModelSlot()
    conflict: ModelSlot = ModelSlot()
    quorum: int = Field(4, ge=1, le=6)
    answer_timeout_s: float = Field(120.0, gt=0)  # one answer, retries and the repair included
    prices: dict[str, ModelPrice] = {}
    rate_limits: dict[str, ModelRateLimit] = {}
    default_rate_limit: ModelRateLimit = ModelRateLimit()


class SimulatorSettings(Section):
    seed: int = Field(4, ge=0, le=2**63 - 1)  # the default opens on a market where the offline models agree to buy
    tier: Tier = "starter"
    quote_balance: Decimal = Field(Decimal("100000"), ge=0, lt=Decimal(10) ** 9)
    """What a fresh sandbox account holds of each quote currency; under what the sandbox
    lets an account hold (simulator.params.MAX_AMOUNT)."""


SERVER_SCHEMES = ("postgresql", "postgres")


def is_server_url(location: str | Path) -> bool:
    """A postgresql:// URL (with or without a +driver); anything else is a file's path."""
    return isinstance(location, str) and location.split("://", 1)[0].split("+", 1)[0] in SERVER_SCHEMES


def hide_password(url: str) -> str:
    """The URL fit to show: a password in it becomes ***."""
    return re.sub(r"^([a-z+]+://[^:/@]*):[^@]*@", r"\1:***@", url)


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_DATA_HOME/tg, else ~/.local/share/tg (the XDG base directory default)."""
    base = environ.get("XDG_DATA_HOME")
    return (Path(base) if base else Path.home() / ".local" / "share") / "tg"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TG_", env_nested_delimiter="__", extra="forbid", frozen=True)

    db: Path | str | None = None
    """A SQLite file's path, or the postgresql:// URL of a server many processes share."""
    data_dir: Path = Field(default_factory=lambda: default_data_dir(os.environ))
    kraken: KrakenSettings = KrakenSettings()
    risk: RiskSettings = RiskSettings()
    execution: ExecutionSettings = ExecutionSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    coordinator: CoordinatorConfig = CoordinatorConfig()
    models: ModelSettings = ModelSettings()

    @field_validator("db", mode="before")
    @classmethod
    def _db_names_a_file(cls, db: Any) -> Any:
        # a blank name would make a file called " " (or open the current directory); another
        # scheme's URL (sqlite:///x.db) a folder called "sqlite:"
        if isinstance(db, str) and not db.strip():
            raise ValueError(f"{db!r} names no database; give a file, e.g. tg.db, or a postgresql:// URL")
        if isinstance(db, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", db) and not is_server_url(db):
            raise ValueError(
                f"{hide_password(db)} is a URL tg does not speak; give a SQLite file's path, e.g. tg.db, "
                "or a postgresql:// URL"
            )
        return db

    @field_validator("db")
    @classmethod
    def _db_is_a_file(cls, db: Path | str | None) -> Path | str | None:
        # a directory would open as "unable to open database file" deep inside a command
        if db is not None and not is_server_url(db) and Path(db).is_dir():
            raise ValueError(f"{db} is a directory; name a database file, e.g. {Path(db) / 'tg.db'}")
        return db

    @field_serializer("db")
    def _without_password(self, db: Path | str | None) -> str | None:
        return hide_password(str(db)) if db is not None else None

    @property
    def db_location(self) -> Path | str:
        """What Store.open takes: the SQLite file, or the server's URL."""
        if self.db is None:
            return self.data_dir / "tg.db"
        return self.db if isinstance(self.db, str) and is_server_url(self.db) else Path(self.db)

    @property
    def db_path(self) -> Path:
        """The local file the database's companions are named after (the pending-writes
        spool, the embedded sandbox, replays): the SQLite file itself, or for a server a
        name in the data directory, so that they stay on this machine's disk."""
        location = self.db_location
        if isinstance(location, Path):
            return location
        digest = hashlib.sha256(hide_password(location).encode()).hexdigest()[:12]
        return self.data_dir / f"server-{digest}.db"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (CLI flags) > environment > TOML file (passed as init defaults below)
        return (init_settings, env_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: it is not UTF-8 text ({exc.reason})") from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from the TOML file, the environment and explicit overrides."""
    path = config_file or (Path(os.environ["TG_CONFIG"]) if os.environ.get("TG_CONFIG") else None)
    if path is None and Path("tg.toml").is_file():
        path = Path("tg.toml")
    file_values = _read_toml(path) if path is not None else {}
    env_only = _EnvOnly()
    try:
        from_env = env_only.model_dump(exclude_unset=True)
        values = _merge(_merge(file_values, from_env), {k: v for k, v in overrides.items() if v is not None})
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, f"in {path}" if path is not None else "")) from exc
    check_environment(os.environ, settings)
    return settings


def check_environment(environ: Mapping[str, str], settings: Settings) -> None:
    """Refuse a TG_* variable that names no setting, with the nearest one that does (a
    model's key variable, named by its slot's api_key_env, is no setting but is fine)."""
    slots = [
        getattr(settings.models, name)
        for name, field in ModelSettings.model_fields.items()
        if field.annotation is ModelSlot
    ]
    key_variables = {slot.api_key_env for slot in slots if slot.api_key_env}
    for name in sorted(environ):
        if not name.startswith("TG_") or name in NOT_SETTINGS or name in key_variables:
            continue
        path = name.removeprefix("TG_").lower().split("__")
        problem = _unknown_key(Settings, path)
        if problem is not None:
            _, suggestion = problem
            hint = f"; did you mean TG_{suggestion.upper().replace('.', '__')}?" if suggestion else ""
            raise ConfigError(f"{name} is not a tg setting{hint} (see `tg config`)")


def _unknown_key(model: type[BaseModel], path: list[str]) -> tuple[str, str | None] | None:
    """None when `path` names a setting of `model`; else the part that does not, and the
    nearest valid key there."""
    fields = model.model_fields
    head, rest = path[0], path[1:]
    if head not in fields:
        close = difflib.get_close_matches(head, list(fields), n=1, cutoff=0.6)
        return head, ".".join([close[0], *rest]) if close else None
    annotation = fields[head].annotation
    if rest and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        deeper = _unknown_key(annotation, rest)
        if deeper is not None:
            return deeper[0], f"{head}.{deeper[1]}" if deeper[1] else None
    return None


def _explain(exc: ValidationError, where: str) -> str:
    """One line for the first problem: an unknown key with its nearest valid one."""
    first = exc.errors()[0]
    loc = _setting_path(first["loc"])
    key = ".".join(loc)
    place = f" {where}" if where else ""
    if first["type"] == "extra_forbidden":
        problem = _unknown_key(Settings, loc)
        suggestion = problem[1] if problem else None
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        return f"unknown setting {key}{place}{hint} (see `tg config`)"
    return f"invalid setting {key}{place}: {_message(first)}"


def _setting_path(loc: tuple[int | str, ...]) -> list[str]:
    """The setting an error's location names: pydantic adds the member of a union it
    tried (db.str, db.lax-or-strict[...]), which names no setting and is left out."""
    path: list[str] = []
    annotation: Any = Settings
    for part in loc:
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                path.append(str(part))  # an unknown key: named as given
                break
            annotation = field.annotation
        elif origin in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            break
        path.append(str(part))
    return path


def _message(error: Any) -> str:
    """pydantic's message without the "Value error, " it puts before a validator's own."""
    return str(error["msg"]).removeprefix("Value error, ")


def describe(config_file: Path | None = None, **overrides: Any) -> list[tuple[str, Any, str]]:
    """Every setting in effect, with where it came from: default, the file, the
    environment or a flag. Settings hold no secret (keys are read on their own)."""
    path = config_file or (Path(os.environ["TG_CONFIG"]) if os.environ.get("TG_CONFIG") else None)
    if path is None and Path("tg.toml").is_file():
        path = Path("tg.toml")
    settings = load_settings(config_file, **overrides)
    layers = [
        (f"file {path}", _flatten(_read_toml(path)) if path is not None else {}),
        ("environment", _flatten(_EnvOnly().model_dump(exclude_unset=True))),
        ("flag", _flatten({k: v for k, v in overrides.items() if v is not None})),
    ]
    described = []
    for key, value in _flatten(settings.model_dump(mode="json")).items():
        source = "default"
        for name, values in layers:
            if key in values:
                source = name
        described.append((key, value, source))
    return described


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _not_json(environ: Mapping[str, str]) -> str:
    """What to say of a TG_* variable naming a table or a list (TG_RISK, TG_COORDINATOR__SYMBOLS)
    whose value is not the JSON such a variable takes."""
    for name in sorted(environ):
        if not name.startswith("TG_") or name in NOT_SETTINGS:
            continue
        kind = _json_kind(Settings, name.removeprefix("TG_").lower().split("__"))
        if kind is None:
            continue
        try:
            json.loads(environ[name])
        except ValueError:
            example = (
                f"""{name}='["..."]'"""
                if kind == "list"
                else f"""{name}='{{"key": value}}', or set its keys one by one as {name}__KEY"""
            )
            return f"invalid environment setting {name}: {environ[name]!r} is not JSON, which a {kind} takes: e.g. {example}"
    return "a TG_* variable naming a table or a list holds no JSON (see `tg config`)"


def _json_kind(model: type[BaseModel], path: list[str]) -> str | None:
    """ "table" or "list" when `path` names such a setting of `model`, whose variable is read
    as JSON; else None."""
    field = model.model_fields.get(path[0])
    if field is None:
        return None
    annotation = field.annotation
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    if len(path) > 1:
        return _json_kind(annotation, path[1:]) if is_model else None  # type: ignore[arg-type]
    if is_model or typing.get_origin(annotation) is dict:
        return "table"
    return "list" if typing.get_origin(annotation) is list else None


class _EnvOnly(Settings):
    """Settings read from TG_* variables alone, to layer them over the TOML file."""

    model_config = SettingsConfigDict(env_prefix="TG_", env_nested_delimiter="__", extra="ignore", frozen=True)

    def __init__(self) -> None:
        try:
            super().__init__()
        except SettingsError as exc:  # a table or list given a value that is not JSON
            raise ConfigError(_not_json(os.environ)) from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = _setting_path(first["loc"])
            name = "TG_" + "__".join(loc).upper()
            if first["type"] == "extra_forbidden":
                problem = _unknown_key(Settings, loc)
                suggestion = problem[1] if problem else None
                hint = f"; did you mean TG_{suggestion.upper().replace('.', '__')}?" if suggestion else ""
                raise ConfigError(f"{name} is not a tg setting{hint} (see `tg config`)") from exc
            raise ConfigError(f"invalid environment setting {name}: {_message(first)}") from exc
