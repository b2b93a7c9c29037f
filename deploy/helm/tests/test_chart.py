"""The Helm chart, rendered offline with Helm's Go SDK (helm-python-sdk) and validated against
the Kubernetes 1.30 OpenAPI schemas (kubernetes-validate). No cluster is involved."""

from __future__ import annotations

import copy
import json
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
SERVICES = {"strategy": 9101, "portfolio": 9102, "execution": 9103}
# Custom resources kubernetes-validate has no schema for: checked by asserts below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "KafkaTopic"}
SECRET_NAME_PATTERN = re.compile(r"PASSWORD|SECRET|API_KEY|DATABASE__URL|USER_INFO|TOKEN")

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
        (("services", "execution", "unknownKey"), 1),
        (("extraConfig", "ALCHEMISER_KAFKA__SASL_PASSWORD"), "hunter2"),
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
            assert egress_ports == ({53, 9093, 443, 5432})
            assert all("to" in rule for rule in policy["egress"][1:])
        else:
            expected = {53, 9092, 8081, 5432} | ({8300} if svc != "strategy" else set())
            assert egress_ports == expected


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
