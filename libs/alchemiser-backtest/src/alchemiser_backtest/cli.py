"""``alchemiser backtest``: one workflow per session of a range, then the results and a tearsheet.

Errors a user can cause (a date outside the dataset, a missing strategy folder, a resume with
other settings, a stack that does not start) are one line and exit code 2; Ctrl-C stops after
the session at hand (a second Ctrl-C at once) and says how to resume.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from alchemiser_backtest.records import SessionRecord
from alchemiser_backtest.session import NO_CAP, Backtest, BacktestError, Mode

__all__ = ["app", "command"]

app = typer.Typer(add_completion=False, rich_markup_mode=None)


class _ModeOption(StrEnum):
    PIPELINE = "pipeline"
    INPROCESS = "inprocess"


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BacktestError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def _money(text: str, option: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BacktestError(f"{option} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise BacktestError(f"{option} must be a number >= 0, got {text}")
    return value


class _Bar:
    """A Rich progress bar: sessions done, sessions/s, the running equity."""

    def __init__(self, console: Console, total: int) -> None:
        self._progress = Progress(
            TextColumn("[bold]backtest[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} sessions/s"),
            TextColumn("{task.fields[session]}"),
            TextColumn("equity [bold]{task.fields[equity]}[/]"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            "backtest", total=total, rate="-", session="", equity="-"
        )
        self._started = time.monotonic()
        self._first: int | None = None
        self._console = console
        # not a terminal (a log, CI): a plain line every 5% instead of the live bar
        self._every = 0 if console.is_terminal else max(1, total // 20)

    def __enter__(self) -> _Bar:
        if not self._every:
            self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if not self._every:
            self._progress.stop()

    def session_done(self, record: SessionRecord, done: int, total: int) -> None:
        if self._first is None:
            self._first, self._started = done - 1, time.monotonic()
        elapsed = time.monotonic() - self._started
        counted = done - self._first
        rate = counted / elapsed if counted > 1 and elapsed > 0 else None
        shown = "-" if rate is None else f"{rate:,.1f}"
        if self._every:
            if done % self._every == 0 or done == total:
                self._console.print(
                    f"{done}/{total} sessions, {shown} sessions/s, "
                    f"{record.day.session}, equity ${record.day.equity:,.2f}",
                    highlight=False,
                )
            return
        self._progress.update(
            self._task,
            completed=done,
            total=total,
            rate=shown,
            session=record.day.session.isoformat(),
            equity=f"${record.day.equity:,.2f}",
        )


@contextmanager
def _interrupts(stop: list[bool], console: Console) -> Iterator[None]:
    """First Ctrl-C/SIGTERM: finish the session at hand, then stop; the second: at once."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop[0]:
            raise KeyboardInterrupt
        stop[0] = True
        console.print("stopping after this session (Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@app.command()
def backtest(  # noqa: PLR0917 - Typer maps each parameter to one option
    start: Annotated[str, typer.Option("--from", help="First session (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Last session (YYYY-MM-DD).")],
    strategies: Annotated[
        Path | None,
        typer.Option(help="Folder of .clj files (+ strategies.toml weights); default: bundled."),
    ] = None,
    cash: Annotated[str, typer.Option(help="Starting cash of the backtest account.")] = "100000",
    mode: Annotated[
        _ModeOption, typer.Option(help="pipeline: the services over Kafka; inprocess: one process.")
    ] = _ModeOption.PIPELINE,
    out: Annotated[
        Path | None, typer.Option(help="Results folder (default var/backtest/<from>_<to>).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted backtest in --out from its last session.")
    ] = False,
    benchmark: Annotated[str, typer.Option(help="Symbol of the dataset to compare with.")] = "SPY",
    slippage_bps: Annotated[
        str, typer.Option(help="Fills move against each order by this many basis points.")
    ] = "5",
    commission_bps: Annotated[
        str, typer.Option(help="Commission, bps of a fill's notional.")
    ] = "0",
    commission_per_share: Annotated[str, typer.Option(help="Commission per share.")] = "0",
    commission_min: Annotated[
        str, typer.Option(help="Minimum commission per fill (when any applies).")
    ] = "0",
    frictionless: Annotated[
        bool, typer.Option(help="No slippage and no commission (overrides the cost options).")
    ] = False,
    dataset: Annotated[
        Path | None, typer.Option(help="Daily-bar folder (default: the bundled demo dataset).")
    ] = None,
    max_order_value: Annotated[
        str | None,
        typer.Option(help="Execution's cap on one order's value (default: none to speak of)."),
    ] = None,
    max_daily_traded_value: Annotated[
        str | None, typer.Option(help="Execution's cap on a session's traded value.")
    ] = None,
    kafka: Annotated[
        str | None,
        typer.Option(
            help="pipeline: Kafka bootstrap servers to run over instead of the embedded broker "
            "(a cluster whose topics no other deployment of the services consumes)."
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="pipeline: a schema registry URL to use instead of starting one."),
    ] = None,
) -> None:
    """Backtest the strategies over every session from --from to --to with the live code."""
    console = Console()
    stop = [False]
    try:
        run = Backtest.prepare(
            start=_date(start, "--from"),
            end=_date(end, "--to"),
            strategies_dir=strategies,
            cash=_money(cash, "--cash"),
            mode=Mode(mode.value),
            out_dir=out,
            benchmark=benchmark,
            slippage_bps=Decimal(0) if frictionless else _money(slippage_bps, "--slippage-bps"),
            commission_bps=Decimal(0)
            if frictionless
            else _money(commission_bps, "--commission-bps"),
            commission_per_share=(
                Decimal(0)
                if frictionless
                else _money(commission_per_share, "--commission-per-share")
            ),
            commission_min=Decimal(0)
            if frictionless
            else _money(commission_min, "--commission-min"),
            dataset_dir=dataset,
            max_order_value=(
                NO_CAP if max_order_value is None else _money(max_order_value, "--max-order-value")
            ),
            max_daily_traded_value=(
                NO_CAP
                if max_daily_traded_value is None
                else _money(max_daily_traded_value, "--max-daily-traded-value")
            ),
        )
        if (kafka or registry) and run.mode is not Mode.PIPELINE:
            raise BacktestError("--kafka and --registry are for --mode pipeline")
        if kafka and resume:
            raise BacktestError(
                "--resume starts the services afresh, and on a given Kafka cluster they would "
                "meet the interrupted run's events; resume without --kafka (the embedded broker)"
            )
        run.kafka_address, run.registry_address = kafka, registry
        console.print(
            f"backtest {run.config.start} to {run.config.end}: {len(run.sessions)} sessions, "
            f"mode {run.mode.value}, {run.config.costs()}, results in {run.out_dir}"
        )
        with _interrupts(stop, console), _Bar(console, len(run.sessions)) as bar:
            records = run.run(console.print, resume=resume, progress=bar, stop=lambda: stop[0])
        if len(records) < len(run.sessions):
            console.print(
                f"interrupted after {len(records)} of {len(run.sessions)} sessions; continue "
                f"with the same options and --resume"
            )
            raise typer.Exit(130)
        report = run.write_report(records)
        console.print(f"tearsheet: {report}")
        failed = [record.day for record in records if record.day.outcome != "completed"]
        if failed:
            console.print(
                f"[yellow]{len(failed)} of {len(records)} sessions did not complete[/] (they "
                f"kept the account as it was); first: {failed[0].session} "
                f"{failed[0].outcome} — the outcome column of equity.csv lists them",
                highlight=False,
            )
    except KeyboardInterrupt:
        console.print("interrupted; continue with the same options and --resume")
        raise typer.Exit(130) from None
    except BacktestError as err:
        console.print(f"[red]error:[/] {err}", highlight=False)
        raise typer.Exit(2) from None


command = typer.main.get_command(app)
"""The ``alchemiser backtest`` command (a single command, not a group)."""
