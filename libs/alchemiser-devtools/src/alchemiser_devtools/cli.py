"""``alchemiser dev``: the whole system on this machine (``make run``, ``make dev``).

* ``run [--date D] [--broker exchange|alpaca] [--run-dir P] [--keep]`` starts the stack (the
  embedded broker, the schema registry, the paper exchange with a $100,000 account and the
  three services, each its own process; see :mod:`alchemiser_devtools.stack`), publishes one
  trigger for the session ``D`` (default: the dataset's last trading day), follows the
  workflow and prints a summary: each strategy's allocation, the consolidated target, the
  plan, the orders and their fills, the account after and the time each hop took. Then it
  stops everything it started (also on Ctrl-C or SIGTERM; exit 130), unless ``--keep``.
  Exit 0 when the workflow completed, 1 otherwise. The summary's data is also written to
  ``<run dir>/workflow.json``.
* ``up`` starts the stack and leaves it running; ``set -a; . var/run/stack.env; set +a`` then
  points the ``alchemiser`` commands at it. ``down`` stops it, ``status`` shows it.

``--broker alpaca`` trades on Alpaca's paper API instead of the paper exchange (none is
started): portfolio and execution get ``ALCHEMISER_BROKER__KIND=alpaca`` and the
``ALCHEMISER_ALPACA__API_KEY`` / ``ALCHEMISER_ALPACA__SECRET_KEY`` of the environment, and
the workflow's account is the one those keys open (Alpaca's ``GET /v2/account``). The strategy
still reads the bundled dataset (its signals are those of ``--date``, default the dataset's last
day), while Alpaca fills at today's prices.

Every process logs in the console format to ``<run dir>/<name>.log``; the terminal shows
progress only. A failure the user can fix is one line naming what to do and the log to read.
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from alchemiser_devtools.stack import AccountSnapshot, Seen, Stack, WorkflowRun

__all__ = ["app"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
_WIDTH_WITHOUT_TERMINAL = 120

app = typer.Typer(
    no_args_is_help=True,
    help="The whole system on this machine: run one workflow, or keep a stack up.",
)

_log = logging.getLogger("alchemiser.dev")


class _Broker(StrEnum):
    """``--broker`` (the stack's ``BrokerKind``, kept here so help imports nothing)."""

    EXCHANGE = "exchange"
    ALPACA = "alpaca"


DateOption = Annotated[
    str | None,
    typer.Option(
        "--date",
        metavar="YYYY-MM-DD",
        help="The trading session (a day of the dataset). Default: its last trading day.",
    ),
]
BrokerOption = Annotated[
    _Broker,
    typer.Option(
        "--broker",
        case_sensitive=False,
        help="exchange: the paper exchange (started here); alpaca: Alpaca's paper API with "
        "ALCHEMISER_ALPACA__API_KEY/__SECRET_KEY from the environment.",
    ),
]
RunDirOption = Annotated[
    Path,
    typer.Option(
        "--run-dir",
        file_okay=False,
        help="Where the stack keeps its state, logs, stack.json and stack.env.",
    ),
]


def _default_run_dir() -> Path:
    return Path("var") / "run"


# -- output ---------------------------------------------------------------------------------


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=_WIDTH_WITHOUT_TERMINAL)
    return console


class _RichProgress:
    """The stack's :class:`~alchemiser_devtools.stack.Progress` as a spinner and tick lines."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def begin(self, what: str) -> None:
        if self._status is None:
            self._status = self.console.status(what + "…")
            self._status.start()
        else:
            self._status.update(what + "…")

    def done(self, name: str, detail: str) -> None:
        self.console.print(f"  [green]✓[/] {name:<10} {detail}")

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _error(console: Console, message: str) -> None:
    console.print(f"[red]error:[/] {message}", soft_wrap=True)


@contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C does (restored afterwards)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(stack: Stack, progress: _RichProgress) -> None:
    """Stop the stack; a further Ctrl-C/SIGTERM meanwhile kills what is left at once."""

    def hurry(signum: int, frame: FrameType | None) -> None:
        stack.hurry.set()

    previous = {sig: signal.signal(sig, hurry) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.stop()
    finally:
        progress.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _parse_date(text: str | None) -> date | None:
    from alchemiser_devtools.stack import StackError

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise StackError(
            f"--date {text!r} is not a date: use YYYY-MM-DD (DATE=2016-03-01)"
        ) from None


# -- the summary ----------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _money(value: Any) -> str:
    number = _decimal(value)
    return "" if number is None else f"${number:,.2f}"


def _pct(value: Any) -> str:
    number = _decimal(value)
    return "" if number is None else f"{number * 100:.2f}%"


def _qty(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    text = f"{number.normalize():f}"
    return text


def _price(value: Any) -> str:
    number = _decimal(value)
    return "" if number is None else f"{number.normalize():f}"


_HOPS = (
    ("SignalGenerated", "strategy", "trigger → signal"),
    ("RebalancePlanned", "portfolio", "signal → plan"),
    ("TradeExecuted", "execution", "plan → orders filled"),
    ("WorkflowCompleted", "execution", "orders → completed"),
)


_ORDER = ("SignalGenerated", "RebalancePlanned", "TradeExecuted", "WorkflowCompleted")
_BY = {"SignalGenerated": "strategy", "RebalancePlanned": "portfolio"}
_WAITING_FOR = {
    "SignalGenerated": "portfolio to plan the rebalance",
    "RebalancePlanned": "execution to trade the plan",
    "TradeExecuted": "the workflow's outcome",
}


class _HopPrinter:
    """One line per hop as its event arrives, in workflow order (the topics interleave)."""

    def __init__(self, console: Console, progress: _RichProgress) -> None:
        self.console = console
        self.progress = progress
        self._seen: dict[str, Seen] = {}
        self._printed = 0

    def __call__(self, seen: Seen) -> None:
        self._seen[seen.event.event_type] = seen
        if seen.event.event_type == "WorkflowFailed":
            self.flush()
            self._line(seen, failed=True)
            return
        while self._printed < len(_ORDER) and _ORDER[self._printed] in self._seen:
            current = self._seen[_ORDER[self._printed]]
            self._line(current)
            self._printed += 1
            if current.event.event_type in _WAITING_FOR:
                self.progress.begin("waiting for " + _WAITING_FOR[current.event.event_type])

    def flush(self) -> None:
        """Print what arrived out of order and is not printed yet."""
        for kind in _ORDER[self._printed :]:
            if kind in self._seen:
                self._line(self._seen[kind])
        self._printed = len(_ORDER)

    def _line(self, seen: Seen, *, failed: bool = False) -> None:
        event = seen.event
        by = _BY.get(event.event_type, event.source.service)
        mark = "[red]✗[/]" if failed else "[green]✓[/]"
        self.console.print(
            f"  {mark} {by:<10} {event.event_type:<18} seen {seen.received_s:.2f} s after "
            "the trigger"
        )


def _summary(
    console: Console, run: WorkflowRun, account: AccountSnapshot | None, broker: str
) -> None:
    """The workflow's summary: strategies, target, plan, orders, account, hops, outcome."""
    trigger = run.trigger
    session = trigger.as_of.isoformat() if trigger.as_of else "today"
    console.print()
    console.rule(
        f"[bold]Workflow {trigger.correlation_id}[/] · account {trigger.account_id} · "
        f"session {session} · {broker}"
    )
    _signal_tables(console, run)
    _plan_table(console, run)
    _orders_table(console, run)
    if account is not None:
        _account_table(console, account)
    _timings(console, run)
    _outcome(console, run)


def _signal_tables(console: Console, run: WorkflowRun) -> None:
    from rich import box
    from rich.table import Table

    from alchemiser_common.events import SignalGenerated

    signal_event: SignalGenerated | None = run.get(SignalGenerated)
    if signal_event is None:
        return
    picks: dict[str, list[str]] = {}
    for pick in signal_event.signals:
        picks.setdefault(pick.strategy, []).append(f"{pick.symbol} {_pct(pick.target_weight)}")
    table = Table(
        title=f"Strategies (signals as of {signal_event.as_of.isoformat()})", box=box.SIMPLE
    )
    table.add_column("strategy")
    table.add_column("allocation", justify="right")
    table.add_column("status")
    table.add_column("holds")
    for allocation in signal_event.strategy_allocations:
        holds = ", ".join(picks.get(allocation.strategy, [])) or (allocation.error or "")
        table.add_row(
            allocation.strategy,
            _pct(allocation.allocation_weight),
            allocation.status.value,
            holds,
        )
    console.print(table)
    target = Table(title="Consolidated target", box=box.SIMPLE)
    target.add_column("symbol")
    target.add_column("weight", justify="right")
    for weight in signal_event.consolidated_portfolio:
        target.add_row(weight.symbol, _pct(weight.weight))
    console.print(target)


def _plan_table(console: Console, run: WorkflowRun) -> None:
    from rich import box
    from rich.table import Table

    from alchemiser_common.events import RebalancePlanned

    planned: RebalancePlanned | None = run.get(RebalancePlanned)
    if planned is None:
        return
    plan = planned.plan
    table = Table(
        title="Plan",
        caption=f"portfolio {_money(plan.total_portfolio_value)} · to trade "
        f"{_money(plan.total_trade_value)} · cash reserve {_pct(plan.cash_reserve_pct)}",
        box=box.SIMPLE,
    )
    table.add_column("symbol")
    table.add_column("action")
    for column in ("now", "target", "value now", "target value", "trade"):
        table.add_column(column, justify="right")
    for item in sorted(plan.items, key=lambda i: i.priority):
        table.add_row(
            item.symbol,
            item.action.value,
            _pct(item.current_weight),
            _pct(item.target_weight),
            _money(item.current_value),
            _money(item.target_value),
            _money(item.trade_amount),
        )
    console.print(table)


def _orders_table(console: Console, run: WorkflowRun) -> None:
    from rich import box
    from rich.table import Table

    from alchemiser_common.events import TradeExecuted

    executed: TradeExecuted | None = run.get(TradeExecuted)
    if executed is None:
        return
    table = Table(
        title="Orders",
        caption=f"{executed.orders_placed} placed · {executed.orders_succeeded} succeeded · "
        f"traded {_money(executed.total_trade_value)}",
        box=box.SIMPLE,
    )
    for column, right in (
        ("leg", True),
        ("symbol", False),
        ("side", False),
        ("qty", True),
        ("type", False),
        ("status", False),
        ("filled", True),
        ("fill price", True),
        ("value", True),
        ("error", False),
    ):
        table.add_column(column, justify="right" if right else "left")
    for order in sorted(executed.orders, key=lambda o: o.leg):
        price = order.filled_avg_price
        table.add_row(
            str(order.leg),
            order.symbol,
            order.side.value,
            _qty(order.qty) if order.notional is None else _money(order.notional),
            order.order_type.value,
            order.status.value,
            _qty(order.filled_qty),
            _price(price),
            "" if price is None else _money(order.filled_qty * price),
            order.error or "",
        )
    console.print(table)


def _account_table(console: Console, account: AccountSnapshot) -> None:
    from rich import box
    from rich.table import Table

    info = account.account
    table = Table(
        title=f"Account {info.get('account_number', '')} after the workflow",
        caption=f"cash {_money(info.get('cash'))} · equity {_money(info.get('equity'))} · "
        f"buying power {_money(info.get('buying_power'))}",
        box=box.SIMPLE,
    )
    table.add_column("symbol")
    for column in ("qty", "avg entry", "price", "market value", "unrealized P/L"):
        table.add_column(column, justify="right")
    for position in sorted(account.positions, key=lambda p: str(p.get("symbol"))):
        table.add_row(
            str(position.get("symbol", "")),
            _qty(position.get("qty")),
            _price(position.get("avg_entry_price")),
            _price(position.get("current_price")),
            _money(position.get("market_value")),
            _money(position.get("unrealized_pl")),
        )
    if not account.positions:
        table.add_row("(no positions)", "", "", "", "", "")
    console.print(table)


def _outcome(console: Console, run: WorkflowRun) -> None:
    from alchemiser_common.events import WorkflowCompleted, WorkflowFailed

    outcome = run.outcome
    if isinstance(outcome, WorkflowCompleted):
        console.print(
            f"[bold green]✓ completed[/] in {outcome.duration_ms} ms: "
            f"{outcome.summary.orders_succeeded} order(s) filled, bought "
            f"{', '.join(outcome.summary.symbols_bought) or 'nothing'}, sold "
            f"{', '.join(outcome.summary.symbols_sold) or 'nothing'}",
            soft_wrap=True,
        )
    elif isinstance(outcome, WorkflowFailed):
        details = "; ".join(f"{k}={v}" for k, v in sorted(outcome.details.items()))
        console.print(
            f"[bold red]✗ failed[/] at {outcome.failure_step.value}: {outcome.reason}"
            + (f" ({details})" if details else ""),
            soft_wrap=True,
        )
    for letter in run.dead_letters:
        console.print(f"[bold red]✗ dead-lettered[/] {letter}", soft_wrap=True)


def _timings(console: Console, run: WorkflowRun) -> None:
    from rich import box
    from rich.table import Table

    table = Table(title="Hops", box=box.SIMPLE)
    table.add_column("hop")
    table.add_column("by")
    table.add_column("took", justify="right")
    table.add_column("seen here after", justify="right")
    previous = run.trigger.occurred_at
    for event_type, by, label in _HOPS:
        seen = run.events.get(event_type)
        if seen is None:
            continue
        took = (seen.event.occurred_at - previous).total_seconds()
        table.add_row(label, by, f"{took:.2f} s", f"{seen.received_s:.2f} s")
        previous = seen.event.occurred_at
    failed = run.events.get("WorkflowFailed")
    if failed is not None:
        took = (failed.event.occurred_at - previous).total_seconds()
        table.add_row(
            "→ failed", failed.event.source.service, f"{took:.2f} s", f"{failed.received_s:.2f} s"
        )
    end = run.events.get("WorkflowCompleted") or failed
    if end is not None:
        total = (end.event.occurred_at - run.trigger.occurred_at).total_seconds()
        table.add_row("[bold]total[/]", "", f"[bold]{total:.2f} s[/]", f"{end.received_s:.2f} s")
    console.print(table)


def _record(path: Path, stack: Stack, run: WorkflowRun, account: AccountSnapshot | None) -> None:
    """The summary's data as JSON (``workflow.json``): events, receive times, account, stack."""
    document = {
        "trigger": run.trigger.model_dump(mode="json"),
        "events": {
            kind: {"received_s": seen.received_s, "event": seen.event.model_dump(mode="json")}
            for kind, seen in run.events.items()
        },
        "dead_letters": run.dead_letters,
        "account": None
        if account is None
        else {"account": account.account, "positions": account.positions},
        "stack": stack.state.to_json(),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# -- commands -------------------------------------------------------------------------------


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _start(stack: Stack, console: Console) -> None:
    console.print(
        f"[bold]Starting the stack[/] in {_rel(stack.run_dir)} "
        f"(broker: {stack.broker.value}; logs: {_rel(stack.run_dir)}/*.log)"
    )
    stack.start()


def _workflow(
    stack: Stack, console: Console, progress: _RichProgress, session: date | None, timeout_s: float
) -> int:
    from alchemiser_common.events import WorkflowCompleted
    from alchemiser_common.workflow import build_trigger
    from alchemiser_devtools.stack import WORKFLOW_FILE, BrokerKind, follow_workflow, read_account

    console.print(
        f"[bold]Workflow[/] for account {stack.account}, session "
        f"{session.isoformat() if session else 'today'}"
    )
    progress.begin("waiting for strategy to generate the signal")
    hops = _HopPrinter(console, progress)
    run = follow_workflow(
        stack,
        lambda: build_trigger(
            stack.account, requested_by="alchemiser-dev-run", as_of=session, rerun=True
        ),
        hops,
        timeout_s,
    )
    hops.flush()
    progress.close()
    account = read_account(stack.state, alpaca_env=stack.alpaca_environment)
    _record(stack.run_dir / WORKFLOW_FILE, stack, run, account)
    _summary(
        console,
        run,
        account,
        "paper exchange" if stack.broker is BrokerKind.EXCHANGE else "Alpaca paper",
    )
    return EXIT_OK if isinstance(run.outcome, WorkflowCompleted) else EXIT_FAILED


def _usage_hint(console: Console, stack: Stack) -> None:
    from alchemiser_devtools.stack import ENV_FILE, RUN_DIR

    option = "" if stack.run_dir == RUN_DIR.resolve() else f" --run-dir {_rel(stack.run_dir)}"
    state = stack.state
    session = f" --as-of {stack.last_session()}" if state.exchange_url else ""
    console.print(
        f"\n[bold]The stack is running[/] (account {state.account}):\n"
        f"  broker    {state.bootstrap_servers}\n"
        f"  registry  {state.registry_url}\n"
        + (f"  exchange  {state.exchange_url}\n" if state.exchange_url else "")
        + f"Use it:   set -a; . {_rel(stack.run_dir / ENV_FILE)}; set +a\n"
        f"          alchemiser workflow start --account {state.account}{session} --rerun --wait\n"
        f"Stop it:  alchemiser dev down{option}   (make dev-down)",
        soft_wrap=True,
    )


def _guarded(console: Console, stack: Callable[[], Stack | None], action: Callable[[], int]) -> int:
    """Run ``action()``; StackError and unexpected errors become one line and exit 1."""
    from alchemiser_devtools.stack import StackError

    try:
        return action()
    except StackError as err:
        _error(console, str(err))
    except Exception as err:  # a bug, not the user's doing: the traceback goes to dev.log
        _log.exception("unexpected error")
        started = stack()
        where = f"; details in {_rel(started.log_path('dev'))}" if started is not None else ""
        _error(console, f"unexpected {type(err).__name__}: {err}{where}")
    return EXIT_FAILED


@app.command("run")
def run_command(
    date_text: DateOption = None,
    broker: BrokerOption = _Broker.EXCHANGE,
    run_dir: RunDirOption = _default_run_dir(),  # noqa: B008 - a constant Path
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the stack running afterwards (as `dev up`).")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the workflow.")
    ] = 120.0,
    *,
    sessions: Annotated[
        int,
        typer.Option(
            "--sessions",
            min=1,
            max=60,
            help="Run this many consecutive sessions, ending at --date (the exchange only).",
        ),
    ] = 1,
) -> None:
    """Start the stack, run one workflow (or one per session with --sessions), print each
    summary, stop the stack.

    Exit 0 when every workflow completed, 1 when one failed or the stack could not start, 130
    when interrupted (Ctrl-C, SIGTERM).
    """
    from alchemiser_devtools.stack import (
        DATASET_DIR,
        BrokerKind,
        Stack,
        StackError,
        pick_session,
        trading_days,
    )

    console = _console()
    progress = _RichProgress(console)
    stack: Stack | None = None
    kind = BrokerKind(broker.value)

    def work() -> int:
        nonlocal stack
        requested = _parse_date(date_text)
        session = (
            pick_session(requested, DATASET_DIR)
            if kind is BrokerKind.EXCHANGE or requested is not None
            else None
        )
        if sessions > 1 and session is None:
            raise StackError("--sessions needs --date with --broker alpaca (it has one clock)")
        days = trading_days(DATASET_DIR)
        chosen: list[date | None] = [session]
        if session is not None and sessions > 1:
            index = days.index(session)
            if index + 1 < sessions:
                raise StackError(
                    f"--sessions {sessions}: the dataset has only {index + 1} sessions up to "
                    f"{session}; pick a later --date or fewer sessions"
                )
            chosen = list(days[index + 1 - sessions : index + 1])
        stack = Stack(run_dir, kind, progress=progress)
        _start(stack, console)
        code = EXIT_OK
        for day in chosen:
            result = _workflow(stack, console, progress, day, timeout)
            code = code if result == EXIT_OK else result
        if keep:
            stack.keep()
            _usage_hint(console, stack)
        return code

    code = EXIT_FAILED
    with _signals_as_interrupts():
        try:
            code = _guarded(console, lambda: stack, work)
            if code != EXIT_OK and stack is not None and stack.state.processes:
                console.print(f"logs: {_rel(stack.run_dir)}/*.log")
        except KeyboardInterrupt:
            progress.close()
            console.print("[yellow]interrupted[/]: stopping the stack")
            code = EXIT_INTERRUPTED
        finally:
            if stack is not None and not stack.state.kept:
                _stop(stack, progress)
            progress.close()
    raise typer.Exit(code)


@app.command("up")
def up_command(
    broker: BrokerOption = _Broker.EXCHANGE,
    run_dir: RunDirOption = _default_run_dir(),  # noqa: B008 - a constant Path
) -> None:
    """Start the stack and leave it running (stop it with `alchemiser dev down`)."""
    from alchemiser_devtools.stack import BrokerKind, Stack

    console = _console()
    progress = _RichProgress(console)
    stack = Stack(run_dir, BrokerKind(broker.value), progress=progress)

    def work() -> int:
        _start(stack, console)
        progress.close()
        stack.keep()
        _usage_hint(console, stack)
        return EXIT_OK

    code = EXIT_FAILED
    with _signals_as_interrupts():
        try:
            code = _guarded(console, lambda: stack, work)
        except KeyboardInterrupt:
            progress.close()
            console.print("[yellow]interrupted[/]: stopping the stack")
            code = EXIT_INTERRUPTED
        finally:
            if not stack.state.kept:
                _stop(stack, progress)
            progress.close()
    raise typer.Exit(code)


@app.command("down")
def down_command(run_dir: RunDirOption = _default_run_dir()) -> None:  # noqa: B008
    """Stop the stack recorded in the run directory (every process it started)."""
    from alchemiser_devtools.stack import StackError, stop_recorded

    console = _console()
    progress = _RichProgress(console)
    try:
        state = stop_recorded(run_dir.resolve(), progress)
    except StackError as err:
        progress.close()
        _error(console, str(err))
        raise typer.Exit(EXIT_FAILED) from None
    progress.close()
    if state is None:
        console.print(f"no stack recorded in {_rel(run_dir)}: nothing to stop")
    else:
        console.print(f"stopped the stack in {_rel(run_dir)} (logs kept there)")


@app.command("status")
def status_command(run_dir: RunDirOption = _default_run_dir()) -> None:  # noqa: B008
    """Show the stack's processes; exit 0 when every one runs and answers, 1 otherwise."""
    from rich import box
    from rich.table import Table

    from alchemiser_devtools.stack import StackError, process_status, read_state

    console = _console()
    try:
        state = read_state(run_dir.resolve())
    except StackError as err:
        _error(console, str(err))
        raise typer.Exit(EXIT_FAILED) from None
    if state is None:
        console.print(
            f"no stack in {_rel(run_dir)} (start one with `alchemiser dev up` or make dev)"
        )
        raise typer.Exit(EXIT_FAILED)
    statuses = process_status(state)
    table = Table(
        title=f"Stack in {_rel(state.run_dir)} (broker: {state.broker.value}, account "
        f"{state.account}, started {state.started_at})",
        box=box.SIMPLE,
    )
    for column in ("process", "pid", "port", "state", "ready", "log"):
        table.add_column(column)
    for status in statuses:
        process = status.process
        ready = "" if status.ready is None else ("yes" if status.ready else "[red]no[/]")
        table.add_row(
            process.name,
            str(process.pid),
            "" if process.port is None else str(process.port),
            "running" if status.running else "[red]stopped[/]",
            ready,
            _rel(process.log),
        )
    console.print(table)
    healthy = all(s.running and s.ready is not False for s in statuses)
    raise typer.Exit(EXIT_OK if healthy else EXIT_FAILED)


@app.command("dashboards")
def dashboards_command(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when the chart's files are stale."),
    ] = False,
) -> None:
    """Build the Grafana dashboards into the Helm chart's dashboards/ directory."""
    from alchemiser_devtools.dashboards import DASHBOARDS_DIR, check_dashboards, write_dashboards

    console = _console()
    if check:
        stale = check_dashboards()
        if stale:
            _error(
                console,
                f"dashboards out of date in {_rel(DASHBOARDS_DIR)}: {', '.join(stale)} "
                "(run `alchemiser dev dashboards`)",
            )
            raise typer.Exit(EXIT_FAILED)
        console.print(f"dashboards in {_rel(DASHBOARDS_DIR)} are current")
        raise typer.Exit(EXIT_OK)
    for path in write_dashboards():
        console.print(f"wrote {_rel(path)}")


if __name__ == "__main__":  # pragma: no cover
    app(prog_name="alchemiser dev")
