"""Historical candles read from CSV files, for `tg replay`.

Two formats are read:
- Kraken's OHLCVT export (the downloadable trade history, one file per pair and
  interval): no header; timestamp (epoch seconds), open, high, low, close, volume,
  trades. A headerless row of six columns (no trade count) is read the same way.
- The common headed OHLCV CSV: a header row naming a time column (timestamp, unix,
  time, date, datetime...) and open, high, low, close and volume columns, in any
  order and case; other columns are ignored (the first column whose name starts with
  "volume" is the base volume when none is called just "volume"). A time is an ISO 8601
  date or date-time (UTC when it carries no offset) or an epoch in seconds or
  milliseconds.

A replay must not rest on data that was quietly "fixed": every row that cannot be
used is reported with its line number and why, and so is every gap (candles missing
between two usable ones). Rows are never guessed back into shape; the first of two
rows for one time is kept. A file written newest first is read in reverse, and that
is said in the notes. Prices and volumes are Decimal, exactly as written.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import pairwise
from pathlib import Path

from core.domain.errors import InputError
from core.domain.models import Candle

KRAKEN_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
"""Candle intervals in minutes, as Kraken publishes them."""

_MILLISECOND_EPOCHS = 100_000_000_000
"""An epoch above this is in milliseconds: in seconds it would lie after the year 5000."""

_LAST_EPOCH = int(datetime.max.replace(tzinfo=UTC).timestamp())
"""The last second a date can show (9999-12-31T23:59:59Z): an epoch beyond it, even in
milliseconds, names no time."""

_TIME_COLUMNS = ("timestamp", "unix", "unixtime", "epoch", "time", "opentime", "date", "datetime")
_PRICE_COLUMNS = ("open", "high", "low", "close")


class CandleFormat(StrEnum):
    KRAKEN_OHLCVT = "kraken-ohlcvt"
    HEADED_OHLCV = "ohlcv-csv"


class ProblemKind(StrEnum):
    MALFORMED = "malformed"  # wrong column count, not a number, a price not above 0, a bad time
    OFF_GRID = "off_grid"  # the time is not a multiple of the interval
    OUT_OF_ORDER = "out_of_order"  # earlier than a row above it
    DUPLICATE = "duplicate"  # the same time as a row above it
    HIGH_BELOW_LOW = "high_below_low"
    OUTSIDE_RANGE = "outside_range"  # open or close beyond the high or the low


@dataclass(frozen=True)
class RecordedCandle:
    """One usable row of a candle file, with the line it came from."""

    line: int
    time: int  # epoch seconds at the candle's open
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int | None  # Kraken's export counts trades; headed CSVs usually do not

    def as_candle(self) -> Candle:
        return Candle(self.time, self.open, self.high, self.low, self.close, self.volume)


@dataclass(frozen=True)
class RowProblem:
    line: int
    kind: ProblemKind
    message: str


@dataclass(frozen=True)
class Gap:
    """Candles missing between two usable ones."""

    after: int  # time of the last candle before the gap
    resumes: int  # time of the first candle after it
    missing: int  # how many candles of the interval fit in between


@dataclass
class CandleSeries:
    source: str
    format: CandleFormat
    interval_minutes: int
    candles: list[RecordedCandle]
    problems: list[RowProblem] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def step(self) -> int:
        return self.interval_minutes * 60

    def between(self, start: int | None = None, end: int | None = None) -> list[RecordedCandle]:
        """The candles opening in [start, end)."""
        return [c for c in self.candles if (start is None or c.time >= start) and (end is None or c.time < end)]


@dataclass(frozen=True)
class _Row:
    line: int
    cells: list[str]


def load_candles(path: Path, *, interval_minutes: int) -> CandleSeries:
    """Read a candle file; bad rows and gaps are reported in the series, not raised.

    Raises InputError when the file cannot be read at all (a line no CSV reader takes
    too), holds no usable row, or its candles are spaced unlike `interval_minutes`.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read candle file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not a UTF-8 text file: {exc.reason}; give a CSV of candles") from exc
    return parse_candles(text.splitlines(), interval_minutes=interval_minutes, source=str(path))


def parse_candles(lines: Iterable[str], *, interval_minutes: int, source: str = "<text>") -> CandleSeries:
    """Parse the lines of a candle file (either format, detected from the first row)."""
    if interval_minutes not in KRAKEN_INTERVALS:
        raise InputError(
            f"--interval {interval_minutes} is not a Kraken candle interval; use one of {list(KRAKEN_INTERVALS)}"
        )
    rows = [
        _Row(number, cells) for number, cells in _numbered_rows(lines, source) if any(cell.strip() for cell in cells)
    ]
    if not rows:
        raise InputError(f"{source} holds no rows; give a CSV of candles")
    header = _header(rows[0].cells)
    problems: list[RowProblem] = []
    if header is None:
        candle_format = CandleFormat.KRAKEN_OHLCVT
        parsed = [_kraken_row(row, problems) for row in rows]
    else:
        candle_format = CandleFormat.HEADED_OHLCV
        columns = _columns(header, source)
        parsed = [_headed_row(row, columns, problems) for row in rows[1:]]
    usable = [c for c in parsed if c is not None]
    if not usable and not problems:
        raise InputError(f"{source} holds a header but no candles")
    series = CandleSeries(source, candle_format, interval_minutes, [], problems)
    if usable:
        if _newest_first(usable):
            usable.reverse()
            series.notes.append("the rows run newest first; they were read in reverse")
        _check_spacing(usable, interval_minutes, source)
        series.candles = _ordered(usable, interval_minutes * 60, problems)
    problems.sort(key=lambda p: p.line)
    if not series.candles:  # every row malformed, or off the interval's grid
        first = problems[0]
        raise InputError(
            f"{source}: none of its {len(problems)} rows is a usable candle; "
            f"the first bad one, line {first.line}: {first.message}"
        )
    series.gaps = find_gaps(series.candles, interval_minutes * 60)
    return series


def find_gaps(candles: Sequence[RecordedCandle], step: int) -> list[Gap]:
    """Every place where the next candle opens more than one interval later."""
    return [
        Gap(after=a.time, resumes=b.time, missing=(b.time - a.time) // step - 1)
        for a, b in pairwise(candles)
        if b.time - a.time > step
    ]


def parse_time(text: str) -> int:
    """Epoch seconds from an epoch (seconds or milliseconds) or an ISO 8601 date or
    date-time, UTC unless it says otherwise. Raises ValueError."""
    cleaned = text.strip()
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        number = None
    if number is not None:
        if not number.is_finite() or number != number.to_integral_value() or number < 0:
            raise ValueError(f"{cleaned!r} is not a whole epoch")
        seconds = int(number)
        seconds = seconds // 1000 if seconds > _MILLISECOND_EPOCHS else seconds
        if seconds > _LAST_EPOCH:
            raise ValueError(f"{cleaned!r} lies after the year 9999")
        return seconds
    if cleaned.upper().endswith(" UTC"):
        cleaned = cleaned[:-4]
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    stamp = moment.timestamp()
    if stamp != int(stamp):
        raise ValueError(f"{text.strip()!r} is not a whole second")
    return int(stamp)


def _numbered_rows(lines: Iterable[str], source: str) -> Iterable[tuple[int, list[str]]]:
    for number, line in enumerate(lines, start=1):
        try:
            yield number, next(csv.reader(io.StringIO(line)), [])
        except csv.Error as exc:  # a field past the csv module's limit of 131072 characters
            raise InputError(f"{source}: line {number} is no CSV row of candles: {exc}") from None


def _is_number(text: str) -> bool:
    try:
        Decimal(text.strip())
    except InvalidOperation:
        return False
    return True


def _header(cells: list[str]) -> list[str] | None:
    """The column names when the first row is a header, None when it is data."""
    if cells and _is_number(cells[0]):
        return None
    return [_name(cell) for cell in cells]


def _name(cell: str) -> str:
    return "".join(ch for ch in cell.strip().lower() if ch.isalnum())


@dataclass(frozen=True)
class _Columns:
    time: int
    prices: tuple[int, int, int, int]
    volume: int
    trades: int | None
    width: int


def _columns(header: list[str], source: str) -> _Columns:
    def find(*names: str) -> int | None:
        for name in names:
            if name in header:
                return header.index(name)
        return None

    time = find(*_TIME_COLUMNS)
    prices = [find(name, name[0]) for name in _PRICE_COLUMNS]
    volume = find("volume", "vol", "v")
    if volume is None:
        volume = next((i for i, name in enumerate(header) if name.startswith("volume")), None)
    missing = [
        name
        for name, index in zip(("time", *_PRICE_COLUMNS, "volume"), (time, *prices, volume), strict=True)
        if index is None
    ]
    if missing:
        raise InputError(
            f"{source}: the header names no {', '.join(missing)} column; a headed CSV needs a time "
            f"column ({', '.join(_TIME_COLUMNS)}) and open, high, low, close, volume"
        )
    assert time is not None and volume is not None
    o, h, low, c = (p for p in prices if p is not None)
    return _Columns(time, (o, h, low, c), volume, find("trades", "count", "tradecount"), len(header))


def _kraken_row(row: _Row, problems: list[RowProblem]) -> RecordedCandle | None:
    if len(row.cells) not in (6, 7):
        return _bad(
            row,
            problems,
            f"{len(row.cells)} columns; Kraken's OHLCVT rows have 7 "
            "(timestamp, open, high, low, close, volume, trades)",
        )
    return _candle(
        row, row.cells[0], row.cells[1:5], row.cells[5], row.cells[6] if len(row.cells) == 7 else None, problems
    )


def _headed_row(row: _Row, columns: _Columns, problems: list[RowProblem]) -> RecordedCandle | None:
    if len(row.cells) != columns.width:
        return _bad(row, problems, f"{len(row.cells)} columns; the header has {columns.width}")
    cells = row.cells
    trades = cells[columns.trades] if columns.trades is not None else None
    return _candle(
        row, cells[columns.time], [cells[i] for i in columns.prices], cells[columns.volume], trades, problems
    )


def _candle(
    row: _Row,
    time_text: str,
    price_texts: list[str],
    volume_text: str,
    trades_text: str | None,
    problems: list[RowProblem],
) -> RecordedCandle | None:
    try:
        time = parse_time(time_text)
    except ValueError:
        return _bad(row, problems, f"time {time_text.strip()!r} is neither an epoch nor an ISO 8601 date")
    values: list[Decimal] = []
    for name, text in zip(_PRICE_COLUMNS, price_texts, strict=True):
        price = _decimal(text)
        if price is None or price <= 0:
            return _bad(row, problems, f"{name} {text.strip()!r} is not a price above 0")
        values.append(price)
    volume = _decimal(volume_text)
    if volume is None or volume < 0:
        return _bad(row, problems, f"volume {volume_text.strip()!r} is not a number of at least 0")
    trades: int | None = None
    if trades_text is not None and trades_text.strip():
        count = _decimal(trades_text)
        if count is None or count < 0 or count != count.to_integral_value():
            return _bad(row, problems, f"trades {trades_text.strip()!r} is not a whole count")
        trades = int(count)
    open_, high, low, close = values
    if high < low:
        problems.append(RowProblem(row.line, ProblemKind.HIGH_BELOW_LOW, f"high {high} is below low {low}"))
        return None
    for name, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            problems.append(
                RowProblem(row.line, ProblemKind.OUTSIDE_RANGE, f"{name} {price} lies outside low {low} .. high {high}")
            )
            return None
    return RecordedCandle(row.line, time, open_, high, low, close, volume, trades)


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _bad(row: _Row, problems: list[RowProblem], message: str) -> RecordedCandle | None:
    """Report a malformed row: it gives no candle."""
    problems.append(RowProblem(row.line, ProblemKind.MALFORMED, message))
    return None


def _newest_first(candles: list[RecordedCandle]) -> bool:
    steps = Counter((b.time > a.time) - (b.time < a.time) for a, b in pairwise(candles))
    return steps[-1] > steps[1]


def _check_spacing(candles: list[RecordedCandle], interval_minutes: int, source: str) -> None:
    """The usual distance between neighbours must be the interval: anything else means
    the wrong --interval, and every row would be reported as off the grid."""
    spacings = Counter(b.time - a.time for a, b in pairwise(candles) if b.time > a.time)
    if not spacings:
        return
    usual = spacings.most_common(1)[0][0]
    if usual == interval_minutes * 60:
        return
    minutes, seconds = divmod(usual, 60)
    if seconds == 0 and minutes in KRAKEN_INTERVALS:
        advice = f"pass --interval {minutes}"
    else:
        advice = "that is no Kraken candle interval; resample the file to one of " + str(list(KRAKEN_INTERVALS))
    raise InputError(
        f"{source}: its candles are usually {usual} s apart, not the {interval_minutes} minutes of --interval; {advice}"
    )


def _ordered(candles: list[RecordedCandle], step: int, problems: list[RowProblem]) -> list[RecordedCandle]:
    """The candles on the interval's grid, each time once, in time order; the rest reported."""
    kept: list[RecordedCandle] = []
    for candle in candles:
        if candle.time % step:
            problems.append(
                RowProblem(
                    candle.line,
                    ProblemKind.OFF_GRID,
                    f"time {_iso(candle.time)} is not on the {step // 60}-minute grid",
                )
            )
            continue
        if kept and candle.time == kept[-1].time:
            same = _values(candle) == _values(kept[-1])
            problems.append(
                RowProblem(
                    candle.line,
                    ProblemKind.DUPLICATE,
                    f"{_iso(candle.time)} repeats line {kept[-1].line}"
                    + ("" if same else " with other values; the first is kept"),
                )
            )
            continue
        if kept and candle.time < kept[-1].time:
            problems.append(
                RowProblem(
                    candle.line,
                    ProblemKind.OUT_OF_ORDER,
                    f"{_iso(candle.time)} comes after {_iso(kept[-1].time)} (line {kept[-1].line})",
                )
            )
            continue
        kept.append(candle)
    return kept


def _values(c: RecordedCandle) -> tuple[Decimal, ...]:
    return (c.open, c.high, c.low, c.close, c.volume)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")
