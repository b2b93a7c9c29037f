"""The headline figures of a ``make bench`` run: flat keys, targets, verdicts, and the table.

:func:`headline` takes the detailed sections the benchmark modules return and derives the flat
top-level keys of ``results/latest.json``:

* ``workflow_latency_ms`` ``{p50, p99, n}`` and ``hops_ms`` (:mod:`.workflow_latency`),
  ``bare_roundtrip_ms`` ``{p50, p99}`` (the same broker, same run);
* ``loop_events_per_s``, ``bare_loop_events_per_s``, ``loop_ratio``
  (:mod:`.runtime_throughput`);
* ``service_ready_s`` (the slowest service, from the broker answering to ``/readyz``) and
  ``cli_help_cpu_s`` (the costlier of the two ``--help`` commands) (:mod:`.startup`);
* ``strategy_ms_per_day`` (the four bundled strategies, one year, shared cache) and
  ``strategy_full_history_s`` (:mod:`.strategy_evaluation`);
* ``backtest_sessions_per_s`` ``{inprocess, pipeline}``, ``backtest_sessions`` (how many
  sessions each mode ran) and ``backtest_modes_agree`` (:mod:`.backtest`);
* ``ratios``, ``targets`` and ``meets`` (one boolean per target).

The workflow targets hold over :data:`~.workflow_latency.TARGET_WORKFLOWS` workflows: a smoke
run with fewer (``BENCH_WORKFLOWS``) does not meet them, whatever its latency. Likewise the
backtest targets over :data:`~.backtest.TARGET_INPROCESS_SESSIONS` and
:data:`~.backtest.TARGET_PIPELINE_SESSIONS` sessions (``BENCH_BACKTEST_INPROCESS_SESSIONS``,
``BENCH_BACKTEST_SESSIONS``).
:func:`print_table` prints metric, measured, target and ok/MISSED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks import backtest as backtest_module
from benchmarks import runtime_throughput, startup, strategy_evaluation, workflow_latency

__all__ = ["headline", "print_table"]

_BASELINE = "baseline_import_typer_rich_pydantic"
_HELP_COMMANDS = ("alchemiser_help", "alchemiser_workflow_start_help")


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _at_most(value: float | None, target: float) -> bool:
    return value is not None and value <= target


def _at_least(value: float | None, target: float) -> bool:
    return value is not None and value >= target


def headline(
    runtime: Mapping[str, Any],
    strategy: Mapping[str, Any],
    starting: Mapping[str, Any],
    workflow: Mapping[str, Any],
    backtest: Mapping[str, Any],
) -> dict[str, Any]:
    """The flat keys of ``latest.json`` (see the module docstring)."""
    latency = dict(workflow["latency_ms"])
    roundtrip = workflow["bare_roundtrip_ms"]
    loop = float(runtime["runtime_events_per_s"])
    bare_loop = float(runtime["bare_events_per_s"])
    loop_ratio = _ratio(loop, bare_loop)
    ready = max(starting["service_ready_after_broker_s"].values())
    cli = starting["cli_cpu_s"]
    cli_help = max(cli[name] for name in _HELP_COMMANDS)
    modes = ("inprocess", "pipeline")
    backtest_rates = {mode: backtest[mode]["sessions_per_s"] for mode in modes}
    backtest_sessions = {mode: backtest[mode]["sessions"] for mode in modes}
    targets: dict[str, float] = {
        "workflow_p50_ms": workflow_latency.TARGET_P50_MS,
        "workflow_p99_ms": workflow_latency.TARGET_P99_MS,
        "workflows": workflow_latency.TARGET_WORKFLOWS,
        "loop_events_per_s": runtime_throughput.TARGET_EVENTS_PER_S,
        "loop_ratio": runtime_throughput.TARGET_RATIO_TO_BARE,
        "service_ready_s": startup.READY_TARGET_S,
        "cli_help_cpu_s": round(startup.CLI_TARGET_RATIO * cli[_BASELINE], 3),
        "strategy_ms_per_day": strategy_evaluation.TARGET_DAY_MS,
        "strategy_full_history_s": strategy_evaluation.TARGET_HISTORY_S,
        "backtest_inprocess_sessions_per_s": backtest_module.TARGET_INPROCESS_SESSIONS_PER_S,
        "backtest_pipeline_sessions_per_s": backtest_module.TARGET_PIPELINE_SESSIONS_PER_S,
        "backtest_inprocess_sessions": backtest_module.TARGET_INPROCESS_SESSIONS,
        "backtest_pipeline_sessions": backtest_module.TARGET_PIPELINE_SESSIONS,
    }
    enough = latency["n"] >= workflow_latency.TARGET_WORKFLOWS
    meets = {
        "workflow_p50_ms": enough and _at_most(latency["p50"], targets["workflow_p50_ms"]),
        "workflow_p99_ms": enough and _at_most(latency["p99"], targets["workflow_p99_ms"]),
        "loop_events_per_s": loop >= targets["loop_events_per_s"],
        "loop_ratio": loop_ratio is not None and loop_ratio >= targets["loop_ratio"],
        "service_ready_s": ready <= targets["service_ready_s"],
        "cli_help_cpu_s": cli_help <= targets["cli_help_cpu_s"],
        "strategy_ms_per_day": strategy["year_per_day_ms"] <= targets["strategy_ms_per_day"],
        "strategy_full_history_s": (
            strategy["full_history_s"] <= targets["strategy_full_history_s"]
        ),
        **{
            f"backtest_{mode}_sessions_per_s": (
                backtest_sessions[mode] >= targets[f"backtest_{mode}_sessions"]
                and _at_least(backtest_rates[mode], targets[f"backtest_{mode}_sessions_per_s"])
            )
            for mode in modes
        },
    }
    return {
        "workflow_latency_ms": latency,
        "hops_ms": workflow["hops_ms"],
        "bare_roundtrip_ms": {"p50": roundtrip["p50"], "p99": roundtrip["p99"]},
        "loop_events_per_s": round(loop),
        "bare_loop_events_per_s": round(bare_loop),
        "loop_ratio": loop_ratio,
        "service_ready_s": round(ready, 3),
        "cli_help_cpu_s": round(cli_help, 3),
        "strategy_ms_per_day": strategy["year_per_day_ms"],
        "strategy_full_history_s": strategy["full_history_s"],
        "backtest_sessions_per_s": backtest_rates,
        "backtest_sessions": backtest_sessions,
        "backtest_modes_agree": bool(backtest["modes_agree"]),
        "ratios": {
            "workflow_p50_to_bare_roundtrip_p50": _ratio(latency["p50"], roundtrip["p50"]),
            "workflow_p99_to_bare_roundtrip_p99": _ratio(latency["p99"], roundtrip["p99"]),
            "loop_to_bare_loop": loop_ratio,
            "backtest_pipeline_to_inprocess": _ratio(
                backtest_rates["pipeline"], backtest_rates["inprocess"]
            ),
        },
        "targets": targets,
        "meets": meets,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} sessions/s"


def _backtest_rows(flat: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The two backtest rates against their targets, their ratio, whether the modes agree."""
    targets, meets = flat["targets"], flat["meets"]
    rates, sessions = flat["backtest_sessions_per_s"], flat["backtest_sessions"]
    rows: list[tuple[str, str, str, str]] = []
    for mode, label in (("inprocess", "in process"), ("pipeline", "pipeline")):
        needed = targets[f"backtest_{mode}_sessions"]
        short = f" (n < {needed:.0f})" if sessions[mode] < needed else ""
        rows.append(
            (
                f"backtest {label} (n={sessions[mode]})",
                _rate(rates[mode]),
                f">= {targets[f'backtest_{mode}_sessions_per_s']:.0f} sessions/s",
                _verdict(meets[f"backtest_{mode}_sessions_per_s"]) + short,
            )
        )
    rows += [
        (
            "  ratio pipeline / in process",
            f"{flat['ratios']['backtest_pipeline_to_inprocess']}",
            "",
            "",
        ),
        ("  modes agree (closing equity)", "yes" if flat["backtest_modes_agree"] else "NO", "", ""),
    ]
    return rows


def print_table(flat: Mapping[str, Any]) -> None:
    """Metric, measured, target, ok/MISSED; informational rows (hops, ratios) have no target."""
    latency, targets, meets = flat["workflow_latency_ms"], flat["targets"], flat["meets"]
    ratios, roundtrip = flat["ratios"], flat["bare_roundtrip_ms"]
    short = latency["n"] < targets["workflows"]
    workflow_verdict = f" (n < {targets['workflows']:.0f})" if short else ""
    rows: list[tuple[str, str, str, str]] = [
        (
            f"workflow latency p50 (n={latency['n']})",
            _ms(latency["p50"]),
            f"<= {targets['workflow_p50_ms']:.0f} ms",
            _verdict(meets["workflow_p50_ms"]) + workflow_verdict,
        ),
        (
            "workflow latency p99",
            _ms(latency["p99"]),
            f"<= {targets['workflow_p99_ms']:.0f} ms",
            _verdict(meets["workflow_p99_ms"]) + workflow_verdict,
        ),
    ]
    rows += [
        (f"  hop {name} p50 / p99", f"{_ms(hop['p50'])} / {_ms(hop['p99'])}", "", "")
        for name, hop in flat["hops_ms"].items()
    ]
    rows += [
        (
            "bare broker round trip p50 / p99",
            f"{_ms(roundtrip['p50'])} / {_ms(roundtrip['p99'])}",
            "",
            "",
        ),
        (
            "  ratio workflow / bare, p50",
            _times(ratios["workflow_p50_to_bare_roundtrip_p50"]),
            "",
            "",
        ),
        (
            "  ratio workflow / bare, p99",
            _times(ratios["workflow_p99_to_bare_roundtrip_p99"]),
            "",
            "",
        ),
        (
            "processing loop (PostgreSQL inbox)",
            f"{flat['loop_events_per_s']:,} ev/s",
            f">= {targets['loop_events_per_s']:,.0f} ev/s",
            _verdict(meets["loop_events_per_s"]),
        ),
        ("bare transactional copy loop", f"{flat['bare_loop_events_per_s']:,} ev/s", "", ""),
        (
            "  ratio loop / bare loop",
            f"{flat['loop_ratio']}",
            f">= {targets['loop_ratio']}",
            _verdict(meets["loop_ratio"]),
        ),
        (
            "service ready after broker (slowest)",
            f"{flat['service_ready_s']:.2f} s",
            f"<= {targets['service_ready_s']:.0f} s",
            _verdict(meets["service_ready_s"]),
        ),
        (
            "CLI --help CPU (costlier command)",
            f"{flat['cli_help_cpu_s']:.3f} s",
            f"<= {targets['cli_help_cpu_s']:.3f} s ({startup.CLI_TARGET_RATIO:g}x import)",
            _verdict(meets["cli_help_cpu_s"]),
        ),
        (
            "strategy evaluation per day",
            f"{flat['strategy_ms_per_day']:.3f} ms",
            f"<= {targets['strategy_ms_per_day']} ms",
            _verdict(meets["strategy_ms_per_day"]),
        ),
        (
            "strategy full history",
            f"{flat['strategy_full_history_s']:.2f} s",
            f"<= {targets['strategy_full_history_s']:.0f} s",
            _verdict(meets["strategy_full_history_s"]),
        ),
        *_backtest_rows(flat),
    ]
    header = ("metric", "measured", "target", "")
    widths = [max(len(row[i]) for row in (*rows, header)) for i in range(3)]
    print()
    print(f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]}")
    print("-" * (sum(widths) + 6 + max(len(row[3]) for row in rows)))
    for metric, measured, target, verdict in rows:
        line = f"{metric:<{widths[0]}}  {measured:>{widths[1]}}  {target:<{widths[2]}}  {verdict}"
        print(line.rstrip())
