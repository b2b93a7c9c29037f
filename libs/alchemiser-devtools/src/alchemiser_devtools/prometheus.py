"""A real Prometheus server as a local process, for tests and dashboard previews.

Debian's ``prometheus`` package (``apt-get install prometheus``; CI installs it) runs as a
plain process on loopback with a generated configuration: static scrape targets (each with
the labels a Kubernetes ServiceMonitor would add: ``namespace``, ``service``, ``pod``), a
short scrape interval, its data in a temporary directory. :class:`PrometheusServer` starts it,
waits until it answers, runs instant and range queries through its HTTP API and stops it;
:func:`promtool_check_rules` runs ``promtool check rules`` on a rules file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from alchemiser_devtools.local import free_port, stop_process

__all__ = [
    "PrometheusError",
    "PrometheusServer",
    "ScrapeTarget",
    "Series",
    "find_prometheus",
    "promtool_check_rules",
]

_START_TIMEOUT_S = 30.0
_HTTP_TIMEOUT_S = 10.0


Series = list[tuple[dict[str, str], list[tuple[float, float]]]]
"""Query results: each series' labels and its (unix time, value) points."""


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or rejected a query."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One ``/metrics`` endpoint and the labels its samples get."""

    address: str  # host:port
    labels: Mapping[str, str] = field(default_factory=dict)


def find_prometheus() -> tuple[str, str] | None:
    """The ``prometheus`` and ``promtool`` executables, or ``None`` when not installed."""
    server, tool = shutil.which("prometheus"), shutil.which("promtool")
    return (server, tool) if server and tool else None


def promtool_check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check rules path`` (check ``returncode``; the output says what is wrong)."""
    found = find_prometheus()
    if found is None:
        raise PrometheusError("promtool is not installed (apt-get install prometheus)")
    return subprocess.run(
        [found[1], "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class PrometheusServer:
    """``prometheus`` on 127.0.0.1 scraping ``targets`` every ``scrape_interval``."""

    def __init__(
        self,
        workdir: Path,
        targets: Sequence[ScrapeTarget],
        *,
        job: str = "alchemiser",
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
    ) -> None:
        found = find_prometheus()
        if found is None:
            raise PrometheusError("prometheus is not installed (apt-get install prometheus)")
        self._binary = found[0]
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [
                        {"targets": [target.address], "labels": dict(target.labels)}
                        for target in targets
                    ],
                }
            ],
        }
        if rule_files:
            config["rule_files"] = [str(path) for path in rule_files]
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"

        workdir.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: Prometheus reads it as its configuration file.
        self.config_path.write_text(json.dumps(config, indent=2))

    def start(self) -> PrometheusServer:
        """Start the process and wait until its API answers."""
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    self._binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1d",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusError(f"prometheus exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise PrometheusError(f"prometheus not ready in {_START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Terminate the process (kill it after 10 s)."""
        stop_process(self._process)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the HTTP API --------------------------------------------------------------------
    def _api(self, path: str, params: Mapping[str, str | float]) -> Any:
        answer = httpx.get(
            f"{self.url}/api/v1/{path}", params=dict(params), timeout=_HTTP_TIMEOUT_S
        )
        body = answer.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')} ({params})")
        return body["data"]

    def query(
        self, expr: str, at: float | None = None
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """An instant query: each series' labels and its one (time, value) point."""
        params: dict[str, str | float] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self._api("query", params)
        if data["resultType"] == "scalar":
            moment, value = data["result"]
            return [({}, [(float(moment), float(value))])]
        return [
            (item["metric"], [(float(item["value"][0]), float(item["value"][1]))])
            for item in data["result"]
        ]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> Series:
        """A range query: each series' labels and its (time, value) points."""
        data = self._api("query_range", {"query": expr, "start": start, "end": end, "step": step})
        return [
            (item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def targets_up(self) -> dict[str, bool]:
        """Each scrape target's address and whether its last scrape succeeded."""
        data = self._api("targets", {"state": "active"})
        return {
            target["labels"]["instance"]: target["health"] == "up"
            for target in data["activeTargets"]
        }

    def rules(self) -> list[dict[str, Any]]:
        """The loaded rule groups' rules (with their health and last error)."""
        data = self._api("rules", {})
        return [rule for group in data["groups"] for rule in group["rules"]]
