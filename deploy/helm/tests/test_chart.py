"""The Helm chart, rendered offline with Helm's Go SDK (helm-python-sdk) and validated against
the Kubernetes 1.30 OpenAPI schemas (kubernetes-validate). No cluster is involved."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from helm_python.errors import HelmValuesError

from alchemiser_common.observability.metrics import METRIC_NAMES
from alchemiser_common.topics import EVENT_TOPICS

CHART = Path(__file__).resolve().parents[1] / "alchemiser"
KUBE_VERSION = "1.30.0"
RELEASE = "alc"
NAMESPACE = "trading"
SERVICES = {"strategy": 9101, "portfolio": 9102, "execution": 9103, "ledger": 9104}
# Custom resources kubernetes-validate has no schema for: checked by asserts below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "KafkaTopic"}
SECRET_NAME_PATTERN = re.compile(
    r"PASSWORD|SECRET|API_KEY|DATABASE__URL|USER_INFO|TOKEN|WEBHOOK__URL"
)
# The ledger's notification secrets: the SMTP login and the webhook URL (it embeds a token).
NOTIFY_SECRETS = {
    "ALCHEMISER_NOTIFY__SMTP__USERNAME": ("alchemiser-smtp", "username"),
    "ALCHEMISER_NOTIFY__SMTP__PASSWORD": ("alchemiser-smtp", "password"),
    "ALCHEMISER_NOTIFY__WEBHOOK__URL": ("alchemiser-webhook", "url"),
}
LEDGER_REPORT = f"{RELEASE}-alchemiser-ledger-report"

Doc = dict[str, Any]


def _values(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / name).read_text())
    return loaded


@cache
def _chart() -> Any:
    return helm.Chart.load(str(CHART))


def _render(values: dict[str, Any]) -> list[Doc]:
    files = _chart().render(
        copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    docs: list[Doc] = []
    for text in files.values():
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@cache
def _default() -> tuple[Doc, ...]:
    return tuple(_render({}))


def _prod_values() -> dict[str, Any]:
    return _values("values-prod.yaml")


@cache
def _prod() -> tuple[Doc, ...]:
    return tuple(_render(_prod_values()))


def _everything() -> dict[str, Any]:
    """Prod values plus every optional resource switched on."""
    values = _prod_values()
    values["topics"]["strimzi"] = {"enabled": True, "clusterName": "kafka", "namespace": ""}
    values["services"]["ledger"]["notify"]["webhook"] = {"existingSecret": "alchemiser-webhook"}
    return values


def _find(docs: tuple[Doc, ...] | list[Doc], kind: str, name: str) -> Doc:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name}: {[(d['kind'], d['metadata']['name']) for d in docs]}")


def _env(container: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in container.get("env", [])}


def _all_on() -> tuple[Doc, ...]:
    return tuple(_render(_everything()))


RENDERINGS: dict[str, Callable[[], tuple[Doc, ...]]] = {
    "default": _default,
    "prod": _prod,
    "everything": _all_on,
}


def test_strict_lint_is_clean() -> None:
    result = helm.lint(str(CHART), strict=True, kube_version=f"v{KUBE_VERSION}")
    assert result["errors"] == []
    assert result["messages"] == []


@pytest.mark.parametrize("name", ["values.yaml", "values-prod.yaml"])
def test_values_files_match_the_schema(name: str) -> None:
    _chart().validate_schema(_values(name))


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("services", "strategy", "replicas"), -1),
        (("services", "portfolio", "metricsPort"), 70000),
        (("broker", "kind"), "ibkr"),
        (("kafka", "securityProtocol"), "TLS"),
        (("kafka", "fetchWaitMaxMs"), -1),
        (("services", "execution", "unknownKey"), 1),
        (("extraConfig", "ALCHEMISER_KAFKA__SASL_PASSWORD"), "hunter2"),
        (("services", "ledger", "extraConfig", "ALCHEMISER_NOTIFY__WEBHOOK__URL"), "https://x"),
        (("services", "ledger", "notify", "smtp", "port"), 0),
        (("services", "ledger", "notify", "smtp", "password"), "hunter2"),
        (("services", "ledger", "notify", "monthlyReport", "schedule"), "monthly"),
        (("podSecurityContext", "runAsNonRoot"), False),
    ],
)
def test_schema_rejects_bad_values(path: tuple[str, ...], bad: object) -> None:
    values = _values("values.yaml")
    target = values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(HelmValuesError, match=re.escape(path[-1])):
        _chart().validate_schema(values)


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_every_object_validates_against_kubernetes(rendering: str) -> None:
    docs = RENDERINGS[rendering]()
    checked = 0
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        checked += 1
    assert checked >= 15


def test_grace_period_must_exceed_the_shutdown_bound() -> None:
    with pytest.raises(Exception, match="terminationGracePeriodSeconds"):
        _render({"terminationGracePeriodSeconds": 20, "runtime": {"shutdownTimeoutS": 20}})


def test_alpaca_needs_its_secret() -> None:
    with pytest.raises(Exception, match=r"alpaca\.existingSecret"):
        _render({"broker": {"kind": "alpaca"}})


@pytest.mark.parametrize("rendering", ["default", "prod"])
@pytest.mark.parametrize(("svc", "port"), sorted(SERVICES.items()))
def test_service_deployment(rendering: str, svc: str, port: int) -> None:
    docs = RENDERINGS[rendering]()
    deployment = _find(docs, "Deployment", f"{RELEASE}-alchemiser-{svc}")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", f"alchemiser_{svc}"]
    assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"

    # Security: non-root, read-only root with a writable /tmp, no capabilities, seccomp.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]

    # Longer than the runtime's own shutdown bound (20 s).
    assert pod["terminationGracePeriodSeconds"] == 45
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]
        == (deployment["spec"]["selector"]["matchLabels"])
    )

    env = _env(container)
    assert env["ALCHEMISER_INSTANCE_ID"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.name"}
    }
    assert env["ALCHEMISER_OBSERVABILITY__METRICS_PORT"]["value"] == str(port)
    assert env["ALCHEMISER_SERVICE_NAME"]["value"] == svc
    assert env["ALCHEMISER_DATABASE__URL"]["valueFrom"] == {
        "secretKeyRef": {"name": f"alchemiser-{svc}-db", "key": "database-url"}
    }
    # Every secret-looking variable is a reference, never a literal.
    for name, item in env.items():
        if SECRET_NAME_PATTERN.search(name):
            assert "value" not in item, name
            assert "secretKeyRef" in item["valueFrom"], name
    assert container["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-alchemiser-config"}}]

    metrics = _find(docs, "Service", f"{RELEASE}-alchemiser-{svc}-metrics")
    assert metrics["spec"]["ports"][0]["port"] == port
    assert metrics["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    pdb = _find(docs, "PodDisruptionBudget", f"{RELEASE}-alchemiser-{svc}")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_prod_secrets_are_references() -> None:
    docs = _prod()
    for svc in SERVICES:
        (container,) = _find(docs, "Deployment", f"{RELEASE}-alchemiser-{svc}")["spec"]["template"][
            "spec"
        ]["containers"]
        env = _env(container)
        assert env["ALCHEMISER_KAFKA__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "alchemiser-kafka",
            "key": "sasl-password",
        }
        assert (
            env["ALCHEMISER_REGISTRY__BASIC_AUTH_USER_INFO"]["valueFrom"]["secretKeyRef"]["name"]
            == "alchemiser-registry"
        )
        if svc == "strategy":
            assert "ALCHEMISER_ALPACA__API_KEY" not in env
        else:
            for var, key in (("API_KEY", "api-key"), ("SECRET_KEY", "secret-key")):
                assert env[f"ALCHEMISER_ALPACA__{var}"]["valueFrom"]["secretKeyRef"] == {
                    "name": "alchemiser-alpaca",
                    "key": key,
                }
    # Nothing in the release is a Secret: keys are only referenced.
    assert not [doc for doc in docs if doc["kind"] == "Secret"]


@pytest.mark.parametrize("rendering", ["default", "prod"])
def test_configmap_holds_settings_and_no_secrets(rendering: str) -> None:
    docs = RENDERINGS[rendering]()
    data = _find(docs, "ConfigMap", f"{RELEASE}-alchemiser-config")["data"]
    assert all(key.startswith("ALCHEMISER_") for key in data)
    assert not [key for key in data if SECRET_NAME_PATTERN.search(key)]
    assert data["ALCHEMISER_OBSERVABILITY__METRICS_HOST"] == "0.0.0.0"
    assert data["ALCHEMISER_OBSERVABILITY__LOG_FORMAT"] == "json"
    assert data["ALCHEMISER_RUNTIME__SHUTDOWN_TIMEOUT_S"] == "20"
    assert data["ALCHEMISER_KAFKA__FETCH_WAIT_MAX_MS"] == "500"  # a real cluster's long poll
    if rendering == "default":
        assert data["ALCHEMISER_BROKER__KIND"] == "exchange"
        assert (
            data["ALCHEMISER_BROKER__EXCHANGE_URL"] == f"http://{RELEASE}-alchemiser-exchange:8300"
        )
        assert data["ALCHEMISER_REGISTRY__URL"] == f"http://{RELEASE}-alchemiser-registry:8081"
    else:
        assert data["ALCHEMISER_BROKER__KIND"] == "alpaca"
        assert data["ALCHEMISER_REGISTRY__URL"] == "https://schema-registry.example.com"
        assert data["ALCHEMISER_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
        assert data["ALCHEMISER_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert data["ALCHEMISER_KAFKA__SASL_USERNAME"] == "alchemiser"


@pytest.mark.parametrize("rendering", ["default", "prod"])
def test_trigger_cronjob(rendering: str) -> None:
    docs = RENDERINGS[rendering]()
    cron = _find(docs, "CronJob", f"{RELEASE}-alchemiser-trigger")["spec"]
    assert cron["schedule"] == "45 15 * * 1-5"
    assert cron["timeZone"] == "America/New_York"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["failedJobsHistoryLimit"] > 0
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    (container,) = job["template"]["spec"]["containers"]
    account = "PAMTFIVV5UGS" if rendering == "default" else "PA3EXAMPLE01"
    assert container["command"] == [
        "alchemiser", "workflow", "start", "--account", account,
        "--wait", "--timeout", "900", "--json",
    ]  # fmt: skip
    assert job["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("rendering", ["default", "prod"])
def test_hook_jobs(rendering: str) -> None:
    docs = RENDERINGS[rendering]()
    topics = _find(docs, "Job", f"{RELEASE}-alchemiser-topics")
    schemas = _find(docs, "Job", f"{RELEASE}-alchemiser-schemas")
    for job, weight in ((topics, "-10"), (schemas, "-5")):
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook-weight"] == weight
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        (container,) = job["spec"]["template"]["spec"]["containers"]
        # Pre-install hooks run before the ConfigMap exists: settings are inline.
        assert "envFrom" not in container
        assert "ALCHEMISER_KAFKA__BOOTSTRAP_SERVERS" in _env(container)
    assert topics["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert topics["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "alchemiser", "topics", "create",
    ]  # fmt: skip
    (container,) = schemas["spec"]["template"]["spec"]["containers"]
    if rendering == "default":
        # The in-chart registry only exists once the release is installed.
        assert schemas["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
        url = f"http://{RELEASE}-alchemiser-registry:8081"
    else:
        assert schemas["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        url = "https://schema-registry.example.com"
    assert container["command"] == ["alchemiser", "schemas", "register", "--registry", url]


def test_default_has_registry_and_exchange() -> None:
    docs = _default()
    registry = _find(docs, "Deployment", f"{RELEASE}-alchemiser-registry")
    (container,) = registry["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "python", "-m", "alchemiser_registry", "serve",
        "--host", "0.0.0.0", "--port", "8081", "--data-dir", "/data",
    ]  # fmt: skip
    claim = registry["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    _find(docs, "PersistentVolumeClaim", claim)
    exchange = _find(docs, "Deployment", f"{RELEASE}-alchemiser-exchange")
    (container,) = exchange["spec"]["template"]["spec"]["containers"]
    assert container["command"][:9] == [
        "python", "-m", "alchemiser_exchange", "serve",
        "--host", "0.0.0.0", "--port", "8300", "--dataset-dir",
    ]  # fmt: skip
    assert container["command"][-2:] == ["--database-url", "$(ALCHEMISER_EXCHANGE__DATABASE_URL)"]
    assert (
        _find(docs, "Service", f"{RELEASE}-alchemiser-exchange")["spec"]["ports"][0]["port"] == 8300
    )
    # No monitoring CRDs unless asked for.
    assert not [doc for doc in docs if doc["kind"] in CRD_KINDS]


def test_prod_has_neither_registry_nor_exchange() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in _prod()}
    assert ("Deployment", f"{RELEASE}-alchemiser-registry") not in kinds
    assert ("Deployment", f"{RELEASE}-alchemiser-exchange") not in kinds


@pytest.mark.parametrize("rendering", ["default", "prod"])
def test_network_policies(rendering: str) -> None:
    docs = RENDERINGS[rendering]()
    for svc, port in SERVICES.items():
        policy = _find(docs, "NetworkPolicy", f"{RELEASE}-alchemiser-{svc}")["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        assert policy["ingress"][0]["ports"] == [{"port": port, "protocol": "TCP"}]
        egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
        if rendering == "prod":
            # The prod example sends e-mail: the ledger also reaches its SMTP server.
            smtp = {587} if svc == "ledger" else set()
            assert egress_ports == ({53, 9093, 443, 5432} | smtp)
            assert all("to" in rule for rule in policy["egress"][1:])
        else:
            expected = {53, 9092, 8081, 5432} | ({8300} if svc != "strategy" else set())
            assert egress_ports == expected


def _selected_services(expr: str) -> set[str]:
    """The services whose metrics Service or Deployment the expression's selectors match."""
    selected: set[str] = set()
    for label, op, pattern in re.findall(r'\b(service|deployment)(=~?)"([^"]+)"', expr):
        for svc in SERVICES:
            name = f"{RELEASE}-alchemiser-{svc}" + ("-metrics" if label == "service" else "")
            # PromQL regex matchers are fully anchored, like re.fullmatch.
            if re.fullmatch(pattern, name) if op == "=~" else pattern == name:
                selected.add(svc)
    return selected


def test_monitoring_resources_use_real_metric_names() -> None:
    docs = _prod()
    monitor = _find(docs, "ServiceMonitor", f"{RELEASE}-alchemiser")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"]["alchemiser.io/metrics"] == "true"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for svc in SERVICES:
        labels = _find(docs, "Service", f"{RELEASE}-alchemiser-{svc}-metrics")["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()

    rule = _find(docs, "PrometheusRule", f"{RELEASE}-alchemiser")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    alerts = {r["alert"] for r in rules}
    assert alerts == {
        "AlchemiserWorkflowFailed",
        "AlchemiserNoWorkflowCompleted",
        "AlchemiserCircuitBreakerTripped",
        "AlchemiserDeadLettersGrowing",
        "AlchemiserConsumerLagHigh",
        "AlchemiserHandlerLatencyHigh",
        "AlchemiserServiceNotReady",
        "AlchemiserMetricsDown",
    }
    # Every series an expression selects is a real metric of the processes
    # (or kube-state-metrics/up).
    known = set(METRIC_NAMES) | {
        f"{name}_{suffix}" for name in METRIC_NAMES for suffix in ("bucket", "sum", "count")
    }
    known |= {"up", "kube_deployment_spec_replicas", "kube_deployment_status_replicas_available"}
    functions = {"sum", "increase", "rate", "max", "histogram_quantile", "vector", "last_over_time"}
    functions |= {"day_of_week", "hour"}
    functions |= {"on", "by"}  # modifiers, not functions
    for r in rules:
        assert r["labels"]["severity"] in {"warning", "critical"}
        assert r["annotations"]["summary"]
        series = set(re.findall(r"([a-z_]+)\{", r["expr"]))
        assert series, r["expr"]
        assert series <= known, (r["alert"], series - known)
        names = set(re.findall(r"\b([a-z_]+)\(", r["expr"]))
        assert names <= functions, (r["alert"], names - functions)
        for topic in re.findall(r'topic="([^"]+)"', r["expr"]):
            assert topic in EVENT_TOPICS

    # Pipeline health covers every service; the workflow alerts only the services that end
    # workflows: the ledger produces no events.
    producers = set(SERVICES) - {"ledger"}
    watched = {r["alert"]: _selected_services(r["expr"]) for r in rules}
    assert watched == {
        "AlchemiserWorkflowFailed": producers,
        "AlchemiserNoWorkflowCompleted": producers,
        "AlchemiserCircuitBreakerTripped": {"execution"},
        "AlchemiserDeadLettersGrowing": set(SERVICES),
        "AlchemiserConsumerLagHigh": set(SERVICES),
        "AlchemiserHandlerLatencyHigh": set(SERVICES),
        "AlchemiserServiceNotReady": set(SERVICES),
        "AlchemiserMetricsDown": set(SERVICES),
    }


def test_strimzi_topics_cover_every_topic_and_dlq() -> None:
    docs = _render(_everything())
    topics = [doc for doc in docs if doc["kind"] == "KafkaTopic"]
    expected = set(EVENT_TOPICS) | {f"{t}.dlq" for t in EVENT_TOPICS}
    assert {doc["spec"]["topicName"] for doc in topics} == expected
    for doc in topics:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "kafka"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
        assert doc["spec"]["partitions"] == 6
        assert doc["spec"]["replicas"] == 3


def test_dashboards_ship_as_sidecar_configmaps() -> None:
    dashboards = CHART / "dashboards"
    files = sorted(path.name for path in dashboards.glob("*.json"))
    assert files == ["event-flow.json", "trading.json", "workflows.json"]
    assert not [d for d in _default() if "dashboard" in d["metadata"]["name"]]

    docs = _prod()
    for name in files:
        config_map = _find(docs, "ConfigMap", f"{RELEASE}-alchemiser-dashboard-{name[:-5]}")
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Alchemiser"}
        assert json.loads(config_map["data"][name]) == json.loads((dashboards / name).read_text())

    values = _prod_values()
    values["monitoring"]["dashboards"] |= {"label": "team_dashboards", "labelValue": "ops"}
    relabelled = _render(values)
    config_map = _find(relabelled, "ConfigMap", f"{RELEASE}-alchemiser-dashboard-trading")
    assert config_map["metadata"]["labels"]["team_dashboards"] == "ops"
    assert "grafana_dashboard" not in config_map["metadata"]["labels"]


def test_strategy_market_data_from_alpaca_needs_and_gets_the_secret() -> None:
    default = _find(_default(), "Deployment", f"{RELEASE}-alchemiser-strategy")
    env = _env(default["spec"]["template"]["spec"]["containers"][0])
    assert env["ALCHEMISER_STRATEGY__MARKET_DATA_SOURCE"]["value"] == "dataset"
    assert "ALCHEMISER_STRATEGY__ALPACA__API_KEY" not in env

    prod = _prod()
    deployment = _find(prod, "Deployment", f"{RELEASE}-alchemiser-strategy")
    env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    assert env["ALCHEMISER_STRATEGY__MARKET_DATA_SOURCE"]["value"] == "alpaca"
    secret = _prod_values()["alpaca"]["existingSecret"]
    for name in ("ALCHEMISER_STRATEGY__ALPACA__API_KEY", "ALCHEMISER_STRATEGY__ALPACA__SECRET_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
        assert "value" not in env[name]
    # The Alpaca egress rule (broker.egress) is there only with marketDataSource=alpaca.
    broker_cidrs = _prod_values()["broker"]["egress"]["cidrs"]

    def has_broker_rule(docs: tuple[Doc, ...] | list[Doc]) -> bool:
        policy = _find(docs, "NetworkPolicy", f"{RELEASE}-alchemiser-strategy")["spec"]
        return any(
            [block["ipBlock"]["cidr"] for block in rule.get("to", [])] == broker_cidrs
            for rule in policy["egress"]
        )

    assert has_broker_rule(prod)
    values = _prod_values()
    values["services"]["strategy"]["marketDataSource"] = "dataset"
    assert not has_broker_rule(_render(values))

    with pytest.raises(Exception, match=r"marketDataSource=alpaca needs alpaca\.existingSecret"):
        _render({"services": {"strategy": {"marketDataSource": "alpaca"}}})


# -- the ledger's notifications and monthly report ------------------------------------------


def _ledger_values(**notify: Any) -> dict[str, Any]:
    """Prod values with the ledger's ``notify`` sections replaced by ``notify``'s."""
    values = _prod_values()
    values["services"]["ledger"]["notify"] = notify
    return values


def _ledger_egress_ports(docs: tuple[Doc, ...] | list[Doc]) -> set[int]:
    policy = _find(docs, "NetworkPolicy", f"{RELEASE}-alchemiser-ledger")["spec"]
    return {p["port"] for rule in policy["egress"] for p in rule["ports"]}


def _service_container(docs: tuple[Doc, ...] | list[Doc], svc: str) -> Doc:
    deployment = _find(docs, "Deployment", f"{RELEASE}-alchemiser-{svc}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _cronjob_pod(docs: tuple[Doc, ...] | list[Doc], name: str) -> Doc:
    pod: Doc = _find(docs, "CronJob", name)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _ledger_containers(docs: tuple[Doc, ...] | list[Doc]) -> dict[str, Doc]:
    """The ledger's container in its Deployment and in its monthly report CronJob."""
    (report,) = _cronjob_pod(docs, LEDGER_REPORT)["containers"]
    return {"Deployment": _service_container(docs, "ledger"), "CronJob": report}


def test_ledger_notify_secrets_are_references_and_in_no_configmap() -> None:
    docs = _all_on()  # e-mail with an SMTP login, and the webhook
    for kind, container in _ledger_containers(docs).items():
        env = _env(container)
        for name, (secret, key) in NOTIFY_SECRETS.items():
            assert "value" not in env[name], (kind, name)
            assert env[name]["valueFrom"] == {"secretKeyRef": {"name": secret, "key": key}}
        assert env["ALCHEMISER_NOTIFY__SMTP__HOST"]["value"] == "smtp.example.com"
        assert env["ALCHEMISER_NOTIFY__SMTP__PORT"]["value"] == "587"
        assert env["ALCHEMISER_NOTIFY__SMTP__STARTTLS"]["value"] == "true"
        assert env["ALCHEMISER_NOTIFY__SMTP__SENDER"]["value"] == (
            "Alchemiser <alchemiser@example.com>"
        )
        assert json.loads(env["ALCHEMISER_NOTIFY__SMTP__RECIPIENTS"]["value"]) == [
            "ops@example.com"
        ]
    # The notify settings travel in the ledger's env only: no ConfigMap holds any of them.
    for config_map in (doc for doc in docs if doc["kind"] == "ConfigMap"):
        assert not [key for key in config_map["data"] if "NOTIFY" in key], config_map["metadata"]
        assert not [key for key in config_map["data"] if SECRET_NAME_PATTERN.search(key)]
    # Only the ledger and its report are told where notifications go.
    for svc in set(SERVICES) - {"ledger"}:
        assert not [name for name in _env(_service_container(docs, svc)) if "NOTIFY" in name]


def test_ledger_without_a_channel_gets_no_notify_settings() -> None:
    env = _env(_service_container(_default(), "ledger"))
    assert not [name for name in env if name.startswith("ALCHEMISER_NOTIFY__")]


def test_smtp_without_a_login_sets_neither_username_nor_password() -> None:
    values = _prod_values()
    values["services"]["ledger"]["notify"]["smtp"]["existingSecret"] = ""
    env = _env(_service_container(_render(values), "ledger"))
    assert "ALCHEMISER_NOTIFY__SMTP__HOST" in env
    assert "ALCHEMISER_NOTIFY__SMTP__USERNAME" not in env
    assert "ALCHEMISER_NOTIFY__SMTP__PASSWORD" not in env


@pytest.mark.parametrize(
    ("key", "empty", "message"),
    [
        ("host", "", r"smtp\.enabled needs services\.ledger\.notify\.smtp\.host"),
        ("sender", "", r"smtp\.enabled needs services\.ledger\.notify\.smtp\.sender"),
        ("recipients", [], r"smtp\.enabled needs at least one address in .*smtp\.recipients"),
    ],
)
def test_smtp_enabled_needs_host_sender_and_recipients(
    key: str, empty: object, message: str
) -> None:
    smtp = {"enabled": True, "host": "smtp.example.com", "sender": "a@example.com"}
    smtp |= {"recipients": ["ops@example.com"], key: empty}
    with pytest.raises(Exception, match=message):
        _render({"services": {"ledger": {"notify": {"smtp": smtp}}}})


@pytest.mark.parametrize("rendering", ["prod", "everything"])
def test_monthly_report_cronjob(rendering: str) -> None:
    docs = RENDERINGS[rendering]()
    cron = _find(docs, "CronJob", LEDGER_REPORT)["spec"]
    trigger = _find(docs, "CronJob", f"{RELEASE}-alchemiser-trigger")["spec"]
    assert cron["schedule"] == "30 16 * * 1-5"
    assert cron["timeZone"] == trigger["timeZone"] == "America/New_York"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["failedJobsHistoryLimit"] > 0
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    # The same pod and container security as every other pod.
    trigger_pod = _cronjob_pod(docs, f"{RELEASE}-alchemiser-trigger")
    assert pod["securityContext"] == trigger_pod["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"] == trigger_pod["containers"][0]["securityContext"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["command"] == [
        "alchemiser", "ledger", "report", "--month", "previous", "--send",
    ]  # fmt: skip
    assert container["image"] == "registry.example.com/alchemiser/ledger:0.1.0"
    env = _env(container)
    assert env["ALCHEMISER_DATABASE__URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "alchemiser-ledger-db", "key": "database-url"}
    }
    for name, item in env.items():
        if SECRET_NAME_PATTERN.search(name):
            assert "value" not in item, name
            assert "secretKeyRef" in item["valueFrom"], name
    # It sends exactly what the service would: the same notify settings.
    service = _service_container(docs, "ledger")
    notify = {name: item for name, item in _env(service).items() if "NOTIFY" in name}
    assert notify
    assert {name: item for name, item in env.items() if "NOTIFY" in name} == notify
    # The report needs no Kafka, registry or broker credentials.
    assert not [name for name in env if re.search("KAFKA|REGISTRY|ALPACA", name)]


def test_monthly_report_cronjob_name_fits_the_cronjob_limit() -> None:
    values = _prod_values() | {"fullnameOverride": "a" * 40}
    names = [doc["metadata"]["name"] for doc in _render(values) if doc["kind"] == "CronJob"]
    assert names == ["a" * 40 + "-trigger", "a" * 38 + "-ledger-report"]
    assert all(len(name) <= 52 for name in names)


@pytest.mark.parametrize(
    ("notify", "rendered"),
    [
        ({}, False),  # the defaults: no channel, nothing to send
        ({"smtp": {"enabled": True}, "monthlyReport": {"enabled": False}}, False),
        ({"webhook": {"existingSecret": "alchemiser-webhook"}}, True),
        ({"smtp": {"enabled": True}}, True),
    ],
)
def test_monthly_report_cronjob_needs_a_channel_and_monthly_report_enabled(
    notify: dict[str, Any], rendered: bool
) -> None:
    values = _prod_values()
    ledger = values["services"]["ledger"]
    smtp = ledger["notify"]["smtp"] | {"enabled": False}
    ledger["notify"] = {"smtp": smtp | notify.get("smtp", {})}
    ledger["notify"] |= {key: notify[key] for key in ("webhook", "monthlyReport") if key in notify}
    cronjobs = {doc["metadata"]["name"] for doc in _render(values) if doc["kind"] == "CronJob"}
    assert (LEDGER_REPORT in cronjobs) is rendered
    assert f"{RELEASE}-alchemiser-trigger" in cronjobs


def test_ledger_network_policy_opens_smtp_only_when_smtp_is_enabled() -> None:
    prod_smtp = _prod_values()["services"]["ledger"]["notify"]["smtp"]
    assert 587 in _ledger_egress_ports(_prod())

    disabled = _ledger_values(smtp=prod_smtp | {"enabled": False})
    assert _ledger_egress_ports(_render(disabled)) == {53, 9093, 443, 5432}

    other_port = _ledger_values(smtp=prod_smtp | {"port": 2525})
    docs = _render(other_port)
    assert _ledger_egress_ports(docs) == {53, 9093, 443, 5432, 2525}
    policy = _find(docs, "NetworkPolicy", f"{RELEASE}-alchemiser-ledger")["spec"]
    (smtp_rule,) = [rule for rule in policy["egress"] if rule["ports"][0]["port"] == 2525]
    assert smtp_rule["to"] == [{"ipBlock": {"cidr": cidr}} for cidr in prod_smtp["egress"]["cidrs"]]
    # No other service may reach the SMTP server.
    for svc in set(SERVICES) - {"ledger"}:
        policy = _find(docs, "NetworkPolicy", f"{RELEASE}-alchemiser-{svc}")["spec"]
        assert 2525 not in {p["port"] for rule in policy["egress"] for p in rule["ports"]}


def test_ledger_network_policy_opens_the_webhook_port_when_configured() -> None:
    webhook_cidr = "192.0.2.0/24"
    webhook = {"existingSecret": "alchemiser-webhook", "egress": {"cidrs": [webhook_cidr]}}
    docs = _render(_ledger_values(webhook=webhook | {"egress": {"cidrs": [], "ports": [8443]}}))
    assert _ledger_egress_ports(docs) == {53, 9093, 443, 5432, 8443}
    assert 8443 not in _ledger_egress_ports(_prod())

    docs = _render(_ledger_values(webhook=webhook))
    policy = _find(docs, "NetworkPolicy", f"{RELEASE}-alchemiser-ledger")["spec"]
    rule = {
        "ports": [{"port": 443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": webhook_cidr}}],
    }
    assert rule in policy["egress"]


def test_rendered_ledger_env_loads_as_the_ledgers_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The ledger's rendered environment (ConfigMap, env, stand-ins for the Secrets) is what
    its settings model reads: e.g. the recipients as a JSON list."""
    from alchemiser_common.settings import load_settings
    from alchemiser_ledger.settings import LedgerSettings

    secrets = {
        "database-url": "postgresql+psycopg://ledger:pw@db.example.com:5432/ledger",
        "api-key": "PKEXAMPLE",
        "secret-key": "example-secret",
        "sasl-password": "example-sasl",
        "user-info": "user:password",
        "username": "alchemiser",
        "password": "example-smtp-password",
        "url": "https://hooks.example.com/services/T0/B0/example-token",
    }
    docs = _all_on()
    environment = dict(_find(docs, "ConfigMap", f"{RELEASE}-alchemiser-config")["data"])
    for name, item in _env(_service_container(docs, "ledger")).items():
        if "value" in item:
            environment[name] = item["value"]
        elif "fieldRef" in item["valueFrom"]:
            environment[name] = f"{RELEASE}-alchemiser-ledger-5f7c9-abcde"
        else:
            environment[name] = secrets[item["valueFrom"]["secretKeyRef"]["key"]]
    for name in os.environ:
        if name.startswith("ALCHEMISER_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env file

    settings = load_settings(LedgerSettings)
    assert settings.service_name == "ledger"
    assert settings.kafka.fetch_wait_max_ms == 500
    assert settings.observability.metrics_port == 9104
    assert settings.notify.channels() == ["email", "webhook"]
    smtp, webhook = settings.notify.smtp, settings.notify.webhook
    assert smtp is not None and webhook is not None
    assert (smtp.host, smtp.port, smtp.starttls) == ("smtp.example.com", 587, True)
    assert smtp.sender == "Alchemiser <alchemiser@example.com>"
    assert smtp.recipients == ["ops@example.com"]
    assert smtp.username == "alchemiser"
    assert smtp.password is not None
    assert smtp.password.get_secret_value() == secrets["password"]
    assert webhook.url.get_secret_value() == secrets["url"]
