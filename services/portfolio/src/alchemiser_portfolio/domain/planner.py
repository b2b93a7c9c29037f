"""The rebalance planner: target weights and an account snapshot in, a plan out.

Pure: no I/O, no clock; Decimal only. Rounding follows :mod:`.decimals`.

Rules (the original Alchemiser's, see ``plan_rebalance``):

1. value = cash + sum(qty x price) over held positions;
2. deployable = value x (1 - cash reserve);
3. per symbol (every target and every held symbol; held but untargeted symbols get weight 0):
   target $ = weight x deployable, trade $ = target $ - current $;
4. BUY if trade > 0, SELL if trade < 0, HOLD if 0 or if |trade| is below the minimum trade
   (1% of value under $1,000, else $5);
5. priority by |trade|: >= 10,000 -> 1, >= 1,000 -> 2, >= 100 -> 3, >= 50 -> 4, else 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, localcontext

from alchemiser_portfolio.domain.decimals import (
    PLANNER_CONTEXT,
    quantize_money,
    quantize_weight,
)
from alchemiser_portfolio.domain.models import (
    AccountSnapshot,
    AllocationRow,
    PlanItem,
    PlannerConfig,
    RebalancePlan,
    TradeAction,
)
from alchemiser_portfolio.exceptions import (
    InvalidAccountError,
    InvalidTargetsError,
    MissingPriceError,
)

__all__ = [
    "PRIORITY_THRESHOLDS",
    "allocation_comparison",
    "execution_order_key",
    "plan_rebalance",
    "trade_priority",
]

PRIORITY_THRESHOLDS: tuple[tuple[Decimal, int], ...] = (
    (Decimal("10000"), 1),
    (Decimal("1000"), 2),
    (Decimal("100"), 3),
    (Decimal("50"), 4),
)
"""``(minimum |trade|, priority)`` pairs, largest first; anything smaller is priority 5."""

_LOWEST_PRIORITY = 5
_ACTION_ORDER = {TradeAction.SELL: 0, TradeAction.BUY: 1, TradeAction.HOLD: 2}
_ZERO = Decimal(0)


def trade_priority(trade_amount: Decimal) -> int:
    """Priority of a trade by its absolute size: 1 (>= $10,000) to 5 (< $50)."""
    size = abs(trade_amount)
    for threshold, priority in PRIORITY_THRESHOLDS:
        if size >= threshold:
            return priority
    return _LOWEST_PRIORITY


def execution_order_key(item: PlanItem) -> tuple[int, int, Decimal, str]:
    """Sort key of the execution order: SELL, BUY, HOLD; priority; |trade| desc; symbol."""
    return (_ACTION_ORDER[item.action], item.priority, -abs(item.trade_amount), item.symbol)


def _validated_weights(targets: Mapping[str, Decimal], config: PlannerConfig) -> dict[str, Decimal]:
    """Check every weight and the sum; an empty mapping means "all cash" and is accepted."""
    weights: dict[str, Decimal] = {}
    for symbol, weight in targets.items():
        if not isinstance(symbol, str) or not symbol or symbol != symbol.strip():
            raise InvalidTargetsError(
                f"target symbol must be a non-blank trimmed string: {symbol!r}"
            )
        if not isinstance(weight, Decimal) or not weight.is_finite():
            raise InvalidTargetsError(f"weight of {symbol} must be a finite Decimal: {weight!r}")
        if weight < 0:
            raise InvalidTargetsError(f"weight of {symbol} is negative: {weight}")
        weights[symbol] = weight
    if not weights:
        return weights
    total = sum(weights.values(), _ZERO)
    if not config.weight_sum_min <= total <= config.weight_sum_max:
        raise InvalidTargetsError(
            f"target weights sum to {total}, outside "
            f"{config.weight_sum_min}..{config.weight_sum_max}"
        )
    return weights


def _current_values(account: AccountSnapshot) -> dict[str, Decimal]:
    """Exact market value (qty x price) of every held position; zero quantities are skipped."""
    values: dict[str, Decimal] = {}
    for symbol, position in account.positions.items():
        if position.qty == 0:
            continue
        price = account.price_of(symbol)
        if price is None:
            raise MissingPriceError(f"held position {symbol} (qty {position.qty}) has no price")
        values[symbol] = position.qty * price
    return values


def _total_value(account: AccountSnapshot, current: Mapping[str, Decimal]) -> Decimal:
    """Exact account value: cash plus held market value; a negative total is refused."""
    total = account.cash + sum(current.values(), _ZERO)
    if total < 0:
        raise InvalidAccountError(f"account value is negative: {total}")
    return total


def _weight_of(value: Decimal, total: Decimal) -> Decimal:
    """``value / total`` to 12 places; zero for an account without value."""
    return quantize_weight(value / total if total else _ZERO)


def _action(trade: Decimal, minimum: Decimal) -> TradeAction:
    """BUY/SELL by the sign of ``trade``; HOLD if it is zero or ``|trade| < minimum``."""
    if trade == 0 or abs(trade) < minimum:
        return TradeAction.HOLD
    return TradeAction.BUY if trade > 0 else TradeAction.SELL


def _plan_item(
    symbol: str,
    *,
    weight: Decimal,
    current_exact: Decimal,
    total: Decimal,
    keep: Decimal,
    minimum: Decimal,
) -> PlanItem:
    """One symbol's line: exact amounts in, cents and 12-place weights out."""
    current_value = quantize_money(current_exact)
    target_value = quantize_money(weight * total * keep)
    trade = target_value - current_value
    action = _action(trade, minimum)
    current_weight = _weight_of(current_exact, total)
    target_weight = quantize_weight(weight * keep)
    return PlanItem(
        symbol=symbol,
        action=action,
        current_weight=current_weight,
        target_weight=target_weight,
        weight_diff=target_weight - current_weight,
        current_value=current_value,
        target_value=target_value,
        trade_amount=trade,
        priority=trade_priority(trade),
        full_liquidation=action is TradeAction.SELL and target_value == 0,
    )


def plan_rebalance(
    targets: Mapping[str, Decimal],
    account: AccountSnapshot,
    config: PlannerConfig | None = None,
) -> RebalancePlan:
    """Turn target weights and an account snapshot into a rebalance plan.

    ``targets`` maps symbol to weight of the deployable value. The weights must be finite,
    non-negative and sum to ``config.weight_sum_min..weight_sum_max`` (inclusive); an empty
    mapping means "all cash": every held position is liquidated. Every held symbol needs a
    price (its own or from ``account.prices``), and so does every target with a positive
    weight that is not held.

    Amounts are computed exactly, then ``current_value``, ``target_value`` and the totals
    are rounded to cents; ``trade_amount = target_value - current_value``. The minimum-trade
    rule and priorities apply to that rounded trade amount; ``|trade| == minimum`` trades.

    Raises:
        InvalidTargetsError: a weight is negative or not finite, or the sum is out of range.
        MissingPriceError: a held position, or a positive target, has no price.
        InvalidAccountError: the account's total value is negative.
    """
    config = config or PlannerConfig()
    with localcontext(PLANNER_CONTEXT):
        weights = _validated_weights(targets, config)
        current = _current_values(account)
        for symbol, weight in weights.items():
            if weight > 0 and symbol not in current and account.price_of(symbol) is None:
                raise MissingPriceError(f"target symbol {symbol} has no price")
        total = _total_value(account, current)
        keep = 1 - config.cash_reserve_pct
        deployable = total * keep
        total_value = quantize_money(total)
        minimum = config.minimum_trade(total_value)

        items = [
            _plan_item(
                symbol,
                weight=weights.get(symbol, _ZERO),
                current_exact=current.get(symbol, _ZERO),
                total=total,
                keep=keep,
                minimum=minimum,
            )
            for symbol in sorted(set(weights) | set(current))
        ]
        ordered = tuple(sorted(items, key=execution_order_key))
        traded = sum(
            (abs(item.trade_amount) for item in ordered if item.action is not TradeAction.HOLD),
            _ZERO,
        )
        return RebalancePlan(
            items=ordered,
            total_portfolio_value=total_value,
            deployable_value=quantize_money(deployable),
            total_trade_value=traded,
            cash_reserve_pct=config.cash_reserve_pct,
        )


def allocation_comparison(
    targets: Mapping[str, Decimal], account: AccountSnapshot
) -> list[AllocationRow]:
    """Compare the strategy's weights with the account's current weights, by symbol.

    One row per target or held symbol, sorted by symbol: ``target_weight`` is the weight as
    given (of the deployable value, no reserve applied), ``current_weight`` is the share of
    the account's total value, ``diff = target_weight - current_weight``; all to 12 places.
    The target weights are not checked against the planner's rules: this is a report.

    Raises:
        MissingPriceError: a held position has no price.
        InvalidAccountError: the account's total value is negative.
    """
    with localcontext(PLANNER_CONTEXT):
        current = _current_values(account)
        total = _total_value(account, current)
        rows: list[AllocationRow] = []
        for symbol in sorted(set(targets) | set(current)):
            target_weight = quantize_weight(targets.get(symbol, _ZERO))
            current_weight = _weight_of(current.get(symbol, _ZERO), total)
            rows.append(
                AllocationRow(symbol, target_weight, current_weight, target_weight - current_weight)
            )
        return rows
