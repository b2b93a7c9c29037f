"""``alchemiser strategy`` commands: evaluate strategy files and print indicators offline.

* ``eval FILE... --data DIR [--as-of YYYY-MM-DD] [--weights a=0.5,b=0.5] [--json]``: each
  file's allocation with the trace of the branch that decided it, then the consolidated
  portfolio (equal weights unless ``--weights``). Same engine as the service: every symbol is
  fetched once and must have a bar on the as-of date (default: the newest date in ``DIR``).
* ``indicator --data DIR --symbol SYM --name NAME [--window N] [--from D] [--to D | --as-of D]
  [--digits 4] [--csv | --json]``: the indicator of the symbol per date, rounded to ``--digits``
  decimals (4, as ``eval``'s traces print them); warm-up values (NaN) print as an empty field
  (``null`` in JSON). Every date of the dataset by default; ``--from``/``--to`` keep the dates
  in that range (inclusive), ``--as-of D`` only the last date on or before ``D``. The value is
  always computed over the whole history, so a range does not restart the warm-up. The PPO
  indicators take ``--short-window --long-window`` (and ``--smooth-window``) instead of
  ``--window``. ``--json`` prints one document: symbol, indicator, parameters, digits, values.
* ``check DIR``: compile every ``.clj`` file under ``DIR`` and report every problem at once,
  one ``error: file:line:col: message`` line each on stderr, then a count; exit status 1 when
  any file fails (the service itself still refuses to start on a file that does not compile).

Errors (unknown indicator, missing symbol, bad date, ``file:line:col`` syntax errors,
unreadable data) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from alchemiser_common.errors import AlchemiserError
from alchemiser_marketdata import DatasetMarketData
from alchemiser_strategy.app import (
    SignalEngine,
    StrategyRun,
    check_strategy_files,
    load_strategy_file,
)
from alchemiser_strategy.domain import INDICATORS, StrategyError, WeightedStrategy
from alchemiser_strategy.exceptions import CliInputError
from alchemiser_strategy.signals import event_weights, symbol_reasons

__all__ = ["EXIT_CHECK_FAILED", "EXIT_INPUT_ERROR", "app", "parse_weights"]

EXIT_INPUT_ERROR = 2
"""Exit status for unusable input (as for a usage error)."""

EXIT_CHECK_FAILED = 1
"""Exit status of ``check`` when at least one file does not compile."""

app = typer.Typer(no_args_is_help=True, help="strategy commands.")


@app.callback()
def _strategy() -> None:
    """Strategy commands (offline: files and a dataset directory; nothing is sent)."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_INPUT_ERROR)


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliInputError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def parse_weights(text: str | None, names: list[str]) -> dict[str, Decimal]:
    """``"a=0.5,b=0.5"`` -> weight per name (file stem or file name); default equal weights."""
    if text is None:
        return dict.fromkeys(names, Decimal(1))
    given: dict[str, Decimal] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            weight = Decimal(value.strip())
        except InvalidOperation:
            weight = Decimal("NaN")
        if not sep or not weight.is_finite() or weight < 0:
            raise CliInputError(f"--weights: {part!r} is not NAME=WEIGHT with a weight >= 0")
        given[Path(key.strip()).stem] = weight
    unknown = sorted(set(given) - set(names))
    missing = sorted(set(names) - set(given))
    if unknown or missing:
        raise CliInputError(
            f"--weights must name every file once: "
            f"unknown {unknown or '-'}, missing {missing or '-'}"
        )
    if not any(given.values()):
        raise CliInputError("--weights: at least one weight must be positive")
    return {name: given[name] for name in names}


def _dataset(directory: Path) -> DatasetMarketData:
    dataset = DatasetMarketData(directory)
    dataset.histories  # noqa: B018 -- load now so a bad directory is reported up front
    return dataset


def _evaluate(files: list[Path], data: Path, as_of: str | None, weights: str | None) -> StrategyRun:
    day = _parse_date(as_of, "--as-of")
    names = [path.stem for path in files]
    if len(set(names)) != len(names):
        raise CliInputError("each strategy file name (without .clj) must be unique")
    shares = parse_weights(weights, names)
    strategies = []
    for path in files:
        try:
            strategy = load_strategy_file(path, str(path))
        except OSError as err:
            raise CliInputError(f"{path}: cannot read: {err.strerror or err}") from err
        strategies.append(WeightedStrategy(strategy, shares[path.stem]))
    dataset = _dataset(data)
    engine = SignalEngine(strategies, dataset, lambda _now: dataset.trading_days()[-1])
    return engine.run(day, datetime.now(UTC))


def _document(run: StrategyRun) -> dict[str, Any]:
    portfolio = run.portfolio
    outcomes = {outcome.name: outcome for outcome in portfolio.outcomes}
    effective = event_weights(portfolio.strategy_weights)
    entries = []
    for item in run.strategies:
        outcome = outcomes[item.strategy.file_name]
        allocation = outcome.allocation
        entry: dict[str, Any] = {
            "file": item.strategy.file_name,
            "name": item.strategy.name,
            "configured_weight": str(item.weight),
            "effective_weight": str(effective.get(outcome.name, Decimal(0))),
            "status": "ok" if allocation is not None else "failed",
            "error": outcome.error,
        }
        if allocation is not None:
            weights = event_weights(allocation.weights)
            entry["allocation"] = {symbol: str(weight) for symbol, weight in weights.items()}
            entry["reasons"] = symbol_reasons(item.strategy, allocation)
            entry["trace"] = [trace.describe() for trace in allocation.trace]
        entries.append(entry)
    return {
        "as_of": run.as_of.isoformat(),
        "market_snapshot_id": run.market_snapshot_id,
        "strategies": entries,
        "all_cash": portfolio.all_cash,
        "consolidated_portfolio": {
            symbol: str(weight) for symbol, weight in event_weights(portfolio.weights).items()
        },
    }


def _print_text(document: dict[str, Any]) -> None:
    for entry in document["strategies"]:
        head = (
            f"== {entry['file']} ({entry['name']}) weight {entry['configured_weight']}"
            f" -> {entry['effective_weight']}: {entry['status']}"
        )
        typer.echo(head)
        if entry["status"] != "ok":
            typer.echo(f"  error: {entry['error']}")
            continue
        typer.echo("  trace:" if entry["trace"] else "  trace: (no decision: unconditional)")
        for line in entry["trace"]:
            typer.echo(f"    {line}")
        typer.echo("  allocation:")
        for symbol, weight in entry["allocation"].items():
            typer.echo(f"    {symbol:<8} {weight}")
    typer.echo(
        f"consolidated portfolio as of {document['as_of']} "
        f"(market snapshot {document['market_snapshot_id'][:16]}):"
    )
    if document["all_cash"]:
        typer.echo("  100% cash (every strategy failed)")
    for symbol, weight in document["consolidated_portfolio"].items():
        typer.echo(f"  {symbol:<8} {weight}")


def _service_strategies(directory: Path) -> tuple[list[Path], str]:
    """The files and weights the service runs: ``strategies.toml`` in ``directory``."""
    from alchemiser_strategy.settings import DEFAULT_WEIGHTS, read_config_weights

    configured = read_config_weights(directory)
    chosen = (
        configured if configured is not None else {k: str(v) for k, v in DEFAULT_WEIGHTS.items()}
    )
    files = [directory / f"{stem.removesuffix('.clj')}.clj" for stem in sorted(chosen)]
    weights = ",".join(
        f"{stem.removesuffix('.clj')}={weight}" for stem, weight in sorted(chosen.items())
    )
    return files, weights


@app.command("eval")
def evaluate_command(  # noqa: PLR0917 - Typer maps each parameter to one option
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Strategy .clj files (default: the service's, from strategies.toml).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Dataset directory of bar files (default: the bundled demo)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="YYYY-MM-DD (default: newest date in DATA).")
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="NAME=W,... per file (default: strategies.toml's without files, else equal).",
        ),
    ] = None,
    strategies_dir: Annotated[
        Path | None,
        typer.Option(
            "--strategies-dir",
            help="Folder of the service's files and strategies.toml (default: the bundled one).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Evaluate strategy files on a dataset and show why each chose its allocation.

    Without files it evaluates what the service runs: the files and weights of
    ``strategies.toml`` (the same file the service reads).
    """
    from alchemiser_strategy.adapters.market_data import DEMO_DATASET_DIR
    from alchemiser_strategy.settings import default_strategies_dir

    try:
        if not files:
            files, configured = _service_strategies(strategies_dir or default_strategies_dir())
            weights = weights or configured
        run = _evaluate(files, data or DEMO_DATASET_DIR, as_of, weights)
    except StrategyError as err:
        _fail(str(err))
    except AlchemiserError as err:
        _fail(str(err).splitlines()[0])
    document = _document(run)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_text(document)


DEFAULT_DIGITS = 4
"""Decimals ``indicator`` prints (as ``eval``'s traces)."""


def _rounded(value: float, digits: int) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def _format(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def _select(
    rows: list[tuple[date, float]],
    symbol: str,
    start: date | None,
    end: date | None,
    as_of: date | None,
) -> list[tuple[date, float]]:
    """The rows ``--from``/``--to`` or ``--as-of`` ask for (``CliInputError`` if none)."""
    if as_of is not None:
        before = [row for row in rows if row[0] <= as_of]
        if not before:
            raise CliInputError(f"no bar of {symbol} on or before {as_of.isoformat()}")
        return before[-1:]
    chosen = [
        row for row in rows if (start is None or row[0] >= start) and (end is None or row[0] <= end)
    ]
    if not chosen:
        first = start.isoformat() if start else "the first date"
        last = end.isoformat() if end else "the last date"
        raise CliInputError(f"no bar of {symbol} from {first} to {last}")
    return chosen


def _dates(
    start: str | None, end: str | None, as_of: str | None
) -> tuple[date | None, date | None, date | None]:
    """``--from``, ``--to`` and ``--as-of`` as dates, checked against each other."""
    first, last = _parse_date(start, "--from"), _parse_date(end, "--to")
    day = _parse_date(as_of, "--as-of")
    if day is not None and last is not None:
        raise CliInputError("give --as-of or --to, not both")
    if first is not None and last is not None and first > last:
        raise CliInputError(f"--from {start} is after --to {end}")
    if day is not None and first is not None and first > day:
        raise CliInputError(f"--from {start} is after --as-of {as_of}")
    return first, last, day


@app.command("indicator")
def indicator_command(
    *,
    data: Annotated[Path, typer.Option("--data", help="Dataset directory of bar files.")],
    symbol: Annotated[str, typer.Option("--symbol", help="Symbol in the dataset.")],
    name: Annotated[str, typer.Option("--name", help="DSL indicator name, e.g. rsi.")],
    window: Annotated[int | None, typer.Option("--window", help="Window in bars.")] = None,
    short_window: Annotated[
        int | None, typer.Option("--short-window", help="PPO short EMA window.")
    ] = None,
    long_window: Annotated[
        int | None, typer.Option("--long-window", help="PPO long EMA window.")
    ] = None,
    smooth_window: Annotated[
        int | None, typer.Option("--smooth-window", help="PPO signal EMA window.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First date to print, YYYY-MM-DD.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last date to print, YYYY-MM-DD.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Print only the last date on or before YYYY-MM-DD."),
    ] = None,
    digits: Annotated[
        int, typer.Option("--digits", min=0, max=15, help="Decimals of the printed values.")
    ] = DEFAULT_DIGITS,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a date,value header.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Print an indicator of one symbol per date (every date of the dataset by default)."""
    spec = INDICATORS.get(name)
    if spec is None:
        _fail(f"unknown indicator {name!r} (known: {', '.join(sorted(INDICATORS))})")
    if as_csv and as_json:
        _fail("give --csv or --json, not both")
    given = {
        "window": window,
        "short-window": short_window,
        "long-window": long_window,
        "smooth-window": smooth_window,
    }
    args = tuple(given[param] or 0 for param in spec.params)
    if spec.params == ("window",) and args[0] < 1:
        _fail(f"indicator {name!r} needs --window N with N >= 1")
    if any(value < 1 for value in args) or (len(args) >= 2 and args[0] >= args[1]):
        options = " ".join(f"--{param} N" for param in spec.params)
        _fail(f"indicator {name!r} needs {options} with every N >= 1 and short below long")
    try:
        first, last, day = _dates(start, end, as_of)
        history = _dataset(data).history(symbol)
    except AlchemiserError as err:
        _fail(str(err).splitlines()[0])
    if history is None:
        _fail(f"symbol {symbol!r} is not in the dataset {data}")
    values = spec.compute(history.closes, args)
    try:
        rows = _select(
            list(zip(history.days, values.tolist(), strict=True)), symbol, first, last, day
        )
    except CliInputError as err:
        _fail(str(err))
    if as_json:
        document = {
            "symbol": symbol,
            "indicator": name,
            "parameters": dict(zip(spec.params, args, strict=True)),
            "digits": digits,
            "values": [
                {"date": when.isoformat(), "value": _rounded(value, digits)} for when, value in rows
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    separator = "," if as_csv else "  "
    shown = ",".join(str(value) for value in args)
    typer.echo(f"date{separator}value" if as_csv else f"{'date':<10}  {name}({shown})")
    for when, value in rows:
        typer.echo(f"{when.isoformat()}{separator}{_format(value, digits)}")


@app.command("check")
def check_command(
    directory: Annotated[
        Path,
        typer.Argument(help="Folder of .clj files (searched recursively).", show_default=False),
    ],
) -> None:
    """Compile every strategy file of a directory and report every problem at once."""
    if not directory.is_dir():
        _fail(f"{directory}: not a directory")
    checks = check_strategy_files(directory)
    if not checks:
        _fail(f"{directory}: no .clj files")
    failed = 0
    for check in checks:
        if check.strategy is not None:
            strategy = check.strategy
            typer.echo(
                f"ok     {check.path} ({strategy.name!r}: {len(strategy.symbols)} symbols, "
                f"{strategy.lookback_bars} bars of history)"
            )
        else:
            failed += 1
            typer.echo(f"error: {check.problem}", err=True)
    typer.echo(f"{len(checks)} files: {len(checks) - failed} compiled, {failed} failed")
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)
