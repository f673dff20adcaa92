"""Reading candle files: Kraken's OHLCVT export, headed OHLCV CSVs, and every kind of
row that cannot be used, reported with its line number."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.domain.errors import InputError
from core.flows.candles import CandleFormat, Gap, ProblemKind, load_candles, parse_candles, parse_time

H = 3_600
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z


def kraken_row(i: int, close: str = "94000.5", **overrides: str) -> str:
    fields = {
        "time": str(T0 + i * H),
        "open": "94000.0",
        "high": "94100.0",
        "low": "93900.0",
        "close": close,
        "volume": "12.50000001",
        "trades": "321",
    }
    fields.update(overrides)
    return ",".join(fields.values())


def problems(lines: list[str], interval: int = 60) -> list[tuple[int, ProblemKind]]:
    return [(p.line, p.kind) for p in parse_candles(lines, interval_minutes=interval).problems]


def test_kraken_ohlcvt_rows_keep_their_exact_decimals() -> None:
    series = parse_candles([kraken_row(0), kraken_row(1, close="94000.12345678")], interval_minutes=60)

    assert series.format is CandleFormat.KRAKEN_OHLCVT
    first, second = series.candles
    assert (first.line, first.time, first.open, first.high, first.low, first.close) == (
        1,
        T0,
        Decimal("94000.0"),
        Decimal("94100.0"),
        Decimal("93900.0"),
        Decimal("94000.5"),
    )
    assert first.volume == Decimal("12.50000001") and first.trades == 321
    assert second.close == Decimal("94000.12345678")
    assert series.problems == [] and series.gaps == []


def test_a_headerless_row_of_six_columns_has_no_trade_count() -> None:
    [candle] = parse_candles([f"{T0},1,2,0.5,1.5,10"], interval_minutes=60).candles
    assert candle.trades is None and candle.volume == Decimal(10)


def test_headed_csv_with_iso_dates_any_column_order_and_extra_columns() -> None:
    lines = [
        "Symbol,Date,Close,High,Low,Open,Volume BTC,Volume USD",
        "BTC/USD,2025-01-01 00:00:00,101.5,102,99,100,3.25,330",
        "BTC/USD,2025-01-01T01:00:00Z,101,103,100.5,101.5,1,101",
        "BTC/USD,2025-01-01T04:00:00+02:00,100,101.5,99.5,101,2,200",
    ]
    series = parse_candles(lines, interval_minutes=60)

    assert series.format is CandleFormat.HEADED_OHLCV
    assert [c.time for c in series.candles] == [T0, T0 + H, T0 + 2 * H]  # 04:00+02:00 is 02:00 UTC
    first = series.candles[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal(100),
        Decimal(102),
        Decimal(99),
        Decimal("101.5"),
        Decimal("3.25"),
    )
    assert first.line == 2 and first.trades is None


@pytest.mark.parametrize("stamp", [str(T0), f"{T0}.0", str(T0 * 1000), "2025-01-01", "2025-01-01 00:00:00 UTC"])
def test_a_time_is_an_epoch_in_seconds_or_milliseconds_or_an_iso_date(stamp: str) -> None:
    assert parse_time(stamp) == T0
    [candle] = parse_candles(
        ["timestamp,open,high,low,close,volume", f"{stamp},1,2,0.5,1.5,10"], interval_minutes=60
    ).candles
    assert candle.time == T0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{t},1,2,0.5,1.5", "5 columns"),
        ("{t},1,2,0.5,1.5,10,3,9", "8 columns"),
        ("{t},one,2,0.5,1.5,10,3", "open 'one' is not a price"),
        ("{t},1,2,0.5,0,10,3", "close '0' is not a price above 0"),
        ("{t},1,2,-0.5,1.5,10,3", "low '-0.5' is not a price above 0"),
        ("{t},1,2,0.5,NaN,10,3", "close 'NaN'"),
        ("{t},1,2,0.5,1.5,-1,3", "volume '-1'"),
        ("{t},1,2,0.5,1.5,10,2.5", "trades '2.5'"),
        ("yesterday,1,2,0.5,1.5,10,3", "time 'yesterday'"),
        ("{t}.5,1,2,0.5,1.5,10,3", "is neither an epoch nor an ISO 8601 date"),
    ],
)
def test_malformed_rows_are_reported_with_their_line_and_reason(row: str, message: str) -> None:
    lines = [kraken_row(0), kraken_row(1), row.format(t=T0 + 2 * H), kraken_row(3)]
    series = parse_candles(lines, interval_minutes=60)

    [problem] = series.problems
    assert (problem.line, problem.kind) == (3, ProblemKind.MALFORMED)
    assert message in problem.message
    assert [c.line for c in series.candles] == [1, 2, 4]


def test_high_below_low_and_prices_outside_the_range_are_reported() -> None:
    lines = [
        kraken_row(0),
        kraken_row(1),
        kraken_row(2, high="93800.0"),  # high below low
        kraken_row(3, open="94200.0"),  # open above the high
        kraken_row(4, close="93000.0"),  # close below the low
        kraken_row(5),
        kraken_row(6),
    ]
    assert problems(lines) == [
        (3, ProblemKind.HIGH_BELOW_LOW),
        (4, ProblemKind.OUTSIDE_RANGE),
        (5, ProblemKind.OUTSIDE_RANGE),
    ]


def test_duplicates_out_of_order_and_off_grid_rows_are_reported_and_the_first_kept() -> None:
    lines = [
        kraken_row(0),
        kraken_row(1),
        kraken_row(1),  # the same row again
        kraken_row(1, close="94050.0"),  # the same time, other values
        kraken_row(3),
        kraken_row(2),  # earlier than the row above
        kraken_row(4, time=str(T0 + 4 * H + 60)),  # a minute off the hour
        kraken_row(5),
    ]
    series = parse_candles(lines, interval_minutes=60)

    assert [(p.line, p.kind) for p in series.problems] == [
        (3, ProblemKind.DUPLICATE),
        (4, ProblemKind.DUPLICATE),
        (6, ProblemKind.OUT_OF_ORDER),
        (7, ProblemKind.OFF_GRID),
    ]
    assert "repeats line 2" in series.problems[0].message
    assert "with other values" in series.problems[1].message
    assert series.candles[1].close == Decimal("94000.5")  # line 2's, not line 4's
    assert [c.line for c in series.candles] == [1, 2, 5, 8]


def test_gaps_are_reported_with_how_many_candles_are_missing() -> None:
    lines = [kraken_row(i) for i in (0, 1, 2, 5, 6, 10)]
    series = parse_candles(lines, interval_minutes=60)

    assert series.problems == []
    assert series.gaps == [
        Gap(after=T0 + 2 * H, resumes=T0 + 5 * H, missing=2),
        Gap(after=T0 + 6 * H, resumes=T0 + 10 * H, missing=3),
    ]


def test_a_file_newest_first_is_read_in_reverse_and_says_so() -> None:
    series = parse_candles([kraken_row(i) for i in (3, 2, 1, 0)], interval_minutes=60)

    assert [c.time for c in series.candles] == [T0, T0 + H, T0 + 2 * H, T0 + 3 * H]
    assert series.problems == []
    assert series.notes == ["the rows run newest first; they were read in reverse"]


def test_blank_lines_are_skipped_and_line_numbers_stay_those_of_the_file() -> None:
    series = parse_candles(["", kraken_row(0), "   ", kraken_row(1, close="x")], interval_minutes=60)
    assert [(p.line, p.kind) for p in series.problems] == [(4, ProblemKind.MALFORMED)]
    assert series.candles[0].line == 2


def test_candles_spaced_unlike_the_interval_are_refused_with_the_right_interval() -> None:
    lines = [kraken_row(0, time=str(T0 + i * 4 * H)) for i in range(5)]
    with pytest.raises(InputError, match="pass --interval 240"):
        parse_candles(lines, interval_minutes=60)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "holds no rows"),
        (["date,open,high,low,close,volume"], "holds a header but no candles"),
        (["date,open,high,low,close"], "names no volume column"),
        (["x,y", "1,2"], "names no time, open, high, low, close, volume"),
        (["a,b,c", "d,e,f"], "names no"),
        ([f"{T0},1,2"], "none of its 1 rows is a usable candle; the first bad one, line 1: 3 columns"),
        (
            [kraken_row(0, time=str(T0 + 800)), kraken_row(0, time=str(T0 + H + 800))],
            "none of its 2 rows is a usable candle; the first bad one, line 1: time .* is not on the 60-minute grid",
        ),
    ],
)
def test_files_without_a_usable_candle_are_refused(lines: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_candles(lines, interval_minutes=60)


def test_a_line_no_csv_reader_takes_is_refused_with_its_number() -> None:
    with pytest.raises(InputError, match="<text>: line 2 is no CSV row of candles: field larger than field limit"):
        parse_candles([kraken_row(0), "x" * 200_000], interval_minutes=60)


def test_an_interval_kraken_does_not_publish_is_refused() -> None:
    with pytest.raises(InputError, match="not a Kraken candle interval"):
        parse_candles([kraken_row(0)], interval_minutes=45)


def test_load_candles_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "XBTUSD_60.csv"
    path.write_text("\n".join(kraken_row(i) for i in range(3)) + "\n", encoding="utf-8")
    series = load_candles(path, interval_minutes=60)
    assert series.source == str(path) and len(series.candles) == 3

    with pytest.raises(InputError, match="cannot read candle file"):
        load_candles(tmp_path / "missing.csv", interval_minutes=60)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        load_candles(tmp_path / "binary.csv", interval_minutes=60)


def test_between_selects_candles_opening_in_a_half_open_span() -> None:
    series = parse_candles([kraken_row(i) for i in range(5)], interval_minutes=60)
    assert [c.time for c in series.between(T0 + H, T0 + 3 * H)] == [T0 + H, T0 + 2 * H]
