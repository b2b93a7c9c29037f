"""A backtest's state on disk: its configuration and one line per completed session.

``<out>/state/backtest.json`` holds the :class:`BacktestConfig` the run started with;
``<out>/state/sessions.jsonl`` one JSON line per completed session (its
:class:`~alchemiser_backtest.records.SessionRecord` plus each position's average entry price),
appended and flushed to disk before the next session starts. ``--resume`` reads both: the
configuration must be the same, and the account is restored from the last line.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from alchemiser_backtest.records import (
    AllocationRecord,
    DayRecord,
    PositionRecord,
    SessionRecord,
    TradeRecord,
)

__all__ = [
    "BacktestConfig",
    "Checkpoint",
    "CheckpointError",
    "Holding",
    "session_from_json",
    "session_to_json",
]

_STATE_DIR = "state"
_CONFIG_FILE = "backtest.json"
_SESSIONS_FILE = "sessions.jsonl"


class CheckpointError(Exception):
    """The state directory cannot be used as asked (one line for the user)."""


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """What decides a backtest's results: resuming with anything else is refused."""

    start: date
    end: date
    cash: Decimal
    strategies_dir: str
    weights: dict[str, str]
    dataset_dir: str
    slippage_bps: Decimal
    commission_per_share: Decimal
    commission_bps: Decimal
    commission_min: Decimal
    benchmark: str
    max_order_value: Decimal
    max_daily_traded_value: Decimal

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (dates ISO, decimals as strings)."""
        return {item.name: _plain(getattr(self, item.name)) for item in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BacktestConfig:
        """The inverse of :meth:`to_json`."""
        return cls(
            start=date.fromisoformat(data["start"]),
            end=date.fromisoformat(data["end"]),
            cash=Decimal(data["cash"]),
            strategies_dir=data["strategies_dir"],
            weights={str(k): str(v) for k, v in data["weights"].items()},
            dataset_dir=data["dataset_dir"],
            slippage_bps=Decimal(data["slippage_bps"]),
            commission_per_share=Decimal(data["commission_per_share"]),
            commission_bps=Decimal(data["commission_bps"]),
            commission_min=Decimal(data["commission_min"]),
            benchmark=data["benchmark"],
            max_order_value=Decimal(data["max_order_value"]),
            max_daily_traded_value=Decimal(data["max_daily_traded_value"]),
        )

    def costs(self) -> str:
        """The cost model in words (for the tearsheet)."""
        if not (self.slippage_bps or self.commission_per_share or self.commission_bps):
            return "frictionless (no slippage, no commission)"
        parts = [f"slippage {self.slippage_bps} bps"]
        if self.commission_per_share or self.commission_bps:
            parts.append(
                f"commission ${self.commission_per_share}/share + {self.commission_bps} bps, "
                f"min ${self.commission_min}"
            )
        else:
            parts.append("no commission")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Holding:
    """A position as the exchange holds it: what restoring the account needs."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def session_to_json(record: SessionRecord, holdings: tuple[Holding, ...]) -> dict[str, Any]:
    """One line of ``sessions.jsonl``."""
    return {
        "day": _plain(asdict(record.day)),
        "positions": [_plain(asdict(item)) for item in record.positions],
        "trades": [_plain(asdict(item)) for item in record.trades],
        "allocations": [_plain(asdict(item)) for item in record.allocations],
        "holdings": [_plain(asdict(item)) for item in holdings],
    }


def _build(kind: type[Any], data: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    for item in fields(kind):
        raw = data[item.name]
        if item.name == "session":
            values[item.name] = date.fromisoformat(raw)
        elif item.type in ("Decimal", Decimal):
            values[item.name] = Decimal(raw)
        else:
            values[item.name] = raw
    return kind(**values)


def session_from_json(data: dict[str, Any]) -> tuple[SessionRecord, tuple[Holding, ...]]:
    """The inverse of :func:`session_to_json`."""
    record = SessionRecord(
        day=_build(DayRecord, data["day"]),
        positions=tuple(_build(PositionRecord, item) for item in data["positions"]),
        trades=tuple(_build(TradeRecord, item) for item in data["trades"]),
        allocations=tuple(_build(AllocationRecord, item) for item in data["allocations"]),
    )
    holdings = tuple(
        Holding(item["symbol"], Decimal(item["qty"]), Decimal(item["avg_entry_price"]))
        for item in data["holdings"]
    )
    return record, holdings


class Checkpoint:
    """The state directory of one backtest (see the module docstring)."""

    def __init__(self, out_dir: Path) -> None:
        self.directory = out_dir / _STATE_DIR
        self._config_path = self.directory / _CONFIG_FILE
        self._sessions_path = self.directory / _SESSIONS_FILE

    def check(self, config: BacktestConfig, *, resume: bool) -> None:
        """Raise :class:`CheckpointError` if the state cannot be begun or resumed as asked."""
        if not resume:
            if self._config_path.exists():
                raise CheckpointError(
                    f"{self.directory.parent} already holds a backtest: resume it with "
                    "--resume, or pick another --out (or delete the folder)"
                )
            return
        if not self._config_path.is_file():
            raise CheckpointError(
                f"nothing to resume in {self.directory.parent}: no {_STATE_DIR}/{_CONFIG_FILE} "
                "(start without --resume)"
            )
        saved = BacktestConfig.from_json(json.loads(self._config_path.read_text()))
        if saved != config:
            changed = [
                item.name
                for item in fields(config)
                if getattr(saved, item.name) != getattr(config, item.name)
            ]
            raise CheckpointError(
                f"the backtest in {self.directory.parent} was started with other settings "
                f"({', '.join(changed)}); resume with the same ones or pick another --out"
            )

    def start(
        self, config: BacktestConfig, *, resume: bool
    ) -> list[tuple[SessionRecord, tuple[Holding, ...]]]:
        """Begin (a fresh state) or resume (the sessions done so far, oldest first)."""
        self.check(config, resume=resume)
        if resume:
            return self._read_sessions()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sessions_path.write_text("")
        tmp = self._config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config.to_json(), indent=2) + "\n")
        os.replace(tmp, self._config_path)
        return []

    def _read_sessions(self) -> list[tuple[SessionRecord, tuple[Holding, ...]]]:
        done: list[tuple[SessionRecord, tuple[Holding, ...]]] = []
        if not self._sessions_path.is_file():
            return done
        for line in self._sessions_path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                done.append(session_from_json(json.loads(line)))
            except (ValueError, KeyError):
                break  # a line cut short by the interruption: that session is run again
        return done

    def append(self, record: SessionRecord, holdings: tuple[Holding, ...]) -> None:
        """Record a completed session durably (flushed and fsynced)."""
        with self._sessions_path.open("a") as handle:
            handle.write(json.dumps(session_to_json(record, holdings)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_to(self, count: int) -> None:
        """Keep the first ``count`` lines (drop a line cut short by an interruption)."""
        lines = [line for line in self._sessions_path.read_text().splitlines() if line.strip()]
        self._sessions_path.write_text("".join(line + "\n" for line in lines[:count]))
