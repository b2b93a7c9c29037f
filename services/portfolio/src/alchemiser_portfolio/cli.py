"""`alchemiser portfolio` commands: a dry run of the planner on files.

``alchemiser portfolio plan --targets T.json --account A.json [--json]`` reads target
weights and an account snapshot, plans the rebalance and prints it; nothing is sent
anywhere. Input decimals are JSON strings (``"0.5"``); JSON integers are accepted, JSON
numbers with a fraction or exponent are refused because a float cannot hold money exactly.
Errors print one line on stderr and exit with status 2.

Empty targets (``{}``) mean "all cash": every held position is sold. A dry run refuses that
plan unless ``--allow-liquidation`` says it is meant (an empty or truncated targets file should
not read as "sell everything"). ``examples/targets.json`` and ``examples/account.json`` at the
repository root are sample inputs.

The plan hash is the shared ``alchemiser_common.events.hashing.plan_hash`` of the plan as
the event would carry it, with :data:`DRY_RUN_PLAN_ID` and the nil correlation id
(:data:`DRY_RUN_CORRELATION_ID`): stable for equal inputs, never equal to a live plan's hash.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table

from alchemiser_common.events import hashing
from alchemiser_common.events.types import Symbol
from alchemiser_portfolio.domain import (
    AccountSnapshot,
    PlanItem,
    Position,
    RebalancePlan,
    plan_rebalance,
)
from alchemiser_portfolio.exceptions import InvalidTargetsError, PlanInputError, PortfolioError
from alchemiser_portfolio.mapping import event_plan

__all__ = [
    "DRY_RUN_CORRELATION_ID",
    "DRY_RUN_PLAN_ID",
    "EXIT_INPUT_ERROR",
    "app",
    "load_account",
    "load_targets",
    "plan_document",
    "plan_hash",
]

EXIT_INPUT_ERROR = 2
"""Exit status for unreadable input or input the planner refuses (as for a usage error)."""

DRY_RUN_CORRELATION_ID = UUID(int=0)
"""The nil UUID: a dry run belongs to no workflow."""

DRY_RUN_PLAN_ID = "dry-run"
"""``plan_id`` of a dry-run plan (it is part of the hashed content)."""

_SYMBOL = TypeAdapter(Symbol)

app = typer.Typer(no_args_is_help=True, help="portfolio commands.")


@app.callback()
def _portfolio() -> None:
    """Portfolio planner commands (dry runs; nothing is sent)."""


class _JsonFraction(str):
    """The text of a JSON number with a fraction or exponent, kept to report it."""

    __slots__ = ()


def _refuse_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity`` literals."""
    raise ValueError(f"{name} is not a valid amount")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing a repeated key (JSON would keep the last silently)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key!r}")
        document[key] = value
    return document


def _read_json(path: Path) -> Any:
    """Read a JSON file; numbers with fractions stay text so they can be refused by key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise PlanInputError(f"{path}: cannot read: {err}") from err
    try:
        return json.loads(
            text,
            parse_float=_JsonFraction,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except ValueError as err:
        raise PlanInputError(f"{path}: not valid JSON: {err}") from err


def _decimal(value: object, path: Path, key: str) -> Decimal:
    """A finite Decimal from a JSON string or integer; anything else names file and key."""
    if isinstance(value, _JsonFraction):
        raise PlanInputError(
            f'{path}: {key}: write decimals as strings, e.g. "{value}", not the JSON number '
            f"{value} (floats cannot hold money exactly)"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PlanInputError(f"{path}: {key}: expected a decimal string, got {value!r}")
    try:
        result = Decimal(value)
    except InvalidOperation as err:
        raise PlanInputError(f"{path}: {key}: not a decimal number: {value!r}") from err
    if not result.is_finite():
        raise PlanInputError(f"{path}: {key}: not a finite number: {value!r}")
    return result


def _symbol(symbol: str, path: Path, key: str) -> str:
    """``symbol`` if the events accept it (upper case, digits, ``.``, ``/``, ``-``)."""
    try:
        return _SYMBOL.validate_python(symbol)
    except ValidationError as err:
        raise PlanInputError(
            f"{path}: {key}: not a valid symbol {symbol!r} (upper-case letters, digits, "
            "'.', '/', '-'; at most 20)"
        ) from err


def _object(value: object, path: Path, key: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an error naming file and key."""
    if not isinstance(value, dict):
        raise PlanInputError(f"{path}: {key}: expected a JSON object, got {value!r}")
    return value


def _no_extra_keys(document: dict[str, Any], allowed: set[str], path: Path, key: str) -> None:
    """Refuse keys the format does not have (a misspelt key must not be silently ignored)."""
    extra = sorted(set(document) - allowed)
    if extra:
        raise PlanInputError(f"{path}: {key}: unknown key(s) {', '.join(extra)}")


def load_targets(path: Path) -> dict[str, Decimal]:
    """Read ``{"SYM": "0.5", ...}`` into a symbol -> weight mapping."""
    document = _object(_read_json(path), path, "(top level)")
    return {
        _symbol(symbol, path, symbol): _decimal(weight, path, symbol)
        for symbol, weight in document.items()
    }


def load_account(path: Path) -> AccountSnapshot:
    """Read ``{"cash", "positions": {SYM: {"qty", "price"}}, "prices": {SYM: price}}``.

    ``price`` of a position may be absent or null; ``positions`` and ``prices`` may be absent.
    """
    document = _object(_read_json(path), path, "(top level)")
    _no_extra_keys(document, {"cash", "positions", "prices"}, path, "(top level)")
    if "cash" not in document:
        raise PlanInputError(f"{path}: cash: missing")
    cash = _decimal(document["cash"], path, "cash")
    positions: dict[str, Position] = {}
    for symbol, raw in _object(document.get("positions", {}), path, "positions").items():
        key = f"positions.{symbol}"
        _symbol(symbol, path, key)
        entry = _object(raw, path, key)
        _no_extra_keys(entry, {"qty", "price"}, path, key)
        if "qty" not in entry:
            raise PlanInputError(f"{path}: {key}.qty: missing")
        qty = _decimal(entry["qty"], path, f"{key}.qty")
        raw_price = entry.get("price")
        price = None if raw_price is None else _decimal(raw_price, path, f"{key}.price")
        positions[symbol] = Position(qty=qty, price=price)
    prices = {
        _symbol(symbol, path, f"prices.{symbol}"): _decimal(price, path, f"prices.{symbol}")
        for symbol, price in _object(document.get("prices", {}), path, "prices").items()
    }
    try:
        return AccountSnapshot(cash=cash, positions=positions, prices=prices)
    except PortfolioError as err:
        raise PlanInputError(f"{path}: {err}") from err


def _text(value: Decimal) -> str:
    """A decimal as plain text with its scale (``"0.000000000000"``, never ``"0E-12"``)."""
    return format(value, "f")


def _item_document(item: PlanItem) -> dict[str, Any]:
    """One plan item as JSON-ready values (decimals as strings)."""
    return {
        "symbol": item.symbol,
        "action": item.action.value,
        "trade_amount": _text(item.trade_amount),
        "target_value": _text(item.target_value),
        "current_value": _text(item.current_value),
        "current_weight": _text(item.current_weight),
        "target_weight": _text(item.target_weight),
        "weight_diff": _text(item.weight_diff),
        "priority": item.priority,
        "full_liquidation": item.full_liquidation,
    }


def plan_hash(plan: RebalancePlan) -> str:
    """The shared plan hash of the dry-run plan (see the module docstring)."""
    return hashing.plan_hash(event_plan(plan, DRY_RUN_PLAN_ID), DRY_RUN_CORRELATION_ID)


def plan_document(plan: RebalancePlan) -> dict[str, Any]:
    """The ``--json`` output: items in execution order, totals and the plan hash."""
    return {
        "items": [_item_document(item) for item in plan.items],
        "total_portfolio_value": _text(plan.total_portfolio_value),
        "deployable_value": _text(plan.deployable_value),
        "total_trade_value": _text(plan.total_trade_value),
        "plan_hash": plan_hash(plan),
    }


def _money(value: Decimal) -> str:
    """Display an amount with thousands separators and cents."""
    return f"{value:,.2f}"


def _print_table(plan: RebalancePlan, digest: str) -> None:
    """Print the plan as a table and its totals."""
    console = Console(highlight=False)
    table = Table(title="Rebalance plan (dry run, execution order)")
    table.add_column("Symbol", no_wrap=True)
    table.add_column("Action", no_wrap=True)
    table.add_column("Trade $", justify="right", no_wrap=True)
    table.add_column("Target $", justify="right", no_wrap=True)
    table.add_column("Current $", justify="right", no_wrap=True)
    table.add_column("Priority", justify="right", no_wrap=True)
    for item in plan.items:
        action = item.action.value + (" (close)" if item.full_liquidation else "")
        table.add_row(
            item.symbol,
            action,
            _money(item.trade_amount),
            _money(item.target_value),
            _money(item.current_value),
            str(item.priority),
        )
    console.print(table)
    console.print(f"Total portfolio value: {_money(plan.total_portfolio_value)}", soft_wrap=True)
    console.print(f"Deployable value:      {_money(plan.deployable_value)}", soft_wrap=True)
    console.print(f"Total trade value:     {_money(plan.total_trade_value)}", soft_wrap=True)
    console.print(f"Plan hash:             {digest}", soft_wrap=True)


def _holds_positions(account: AccountSnapshot) -> bool:
    """Whether the account holds anything that empty targets would sell."""
    return any(position.qty != 0 for position in account.positions.values())


def _fail(message: str) -> NoReturn:
    """Print one line on stderr and exit with :data:`EXIT_INPUT_ERROR` (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_INPUT_ERROR)


@app.command("plan")
def plan_command(
    targets: Annotated[
        Path, typer.Option("--targets", help='Target weights JSON: {"SYM": "0.5", ...}.')
    ],
    account: Annotated[
        Path,
        typer.Option(
            "--account",
            help='Account JSON: {"cash": "...", "positions": {SYM: {"qty", "price"}}, '
            '"prices": {SYM: "..."}}.',
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    allow_liquidation: Annotated[
        bool,
        typer.Option(
            "--allow-liquidation",
            help="Plan empty targets ({}) although that sells every position.",
        ),
    ] = False,
) -> None:
    """Plan a rebalance from files and print it; nothing is sent anywhere."""
    try:
        weights, snapshot = load_targets(targets), load_account(account)
        if not weights and not allow_liquidation and _holds_positions(snapshot):
            _fail(
                f"{targets}: no target weights: the plan would sell every position (liquidate "
                "the account); pass --allow-liquidation if that is meant"
            )
        plan = plan_rebalance(weights, snapshot)
        document = plan_document(plan)
    except PlanInputError as err:
        _fail(str(err))
    except InvalidTargetsError as err:
        _fail(f"{targets}: {err}")
    except PortfolioError as err:
        _fail(f"{account}: {err}")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        _fail(f"the plan cannot be expressed as an event: {where}: {first['msg']}")
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print_table(plan, document["plan_hash"])
