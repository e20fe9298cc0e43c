"""deploy/kubernetes/ rendered as `kubectl apply -k` would, without kubectl, and checked against
what bff is: its routes, its port, the image's user, its settings, its drain, its sizing.

``render()`` reads kustomization.yaml and applies the only transformations it uses (the
namespace, metadata and pod-template labels, the image); where kubectl or kustomize is
installed, their output must equal it. Every rendered object of a core kind validates strictly
against Kubernetes ``K8S_VERSION`` (kubernetes-validate's schemas, offline); the ServiceMonitor
(a CRD, no schema there) is checked field by field here.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate

import bff.web.views  # noqa: F401 - declares every operation in the registry
from bff.server_settings import load_server_settings
from bff.settings import FILE_VARIABLES, load_settings
from bff.web.operations import OPERATIONS

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
K8S_VERSION = re.search(r"^K8S_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
DOCKERFILE = (ROOT / "Dockerfile").read_text()
EXPOSED = re.search(r"^EXPOSE (\d+)$", DOCKERFILE, re.M)
SECRETS = ("REDIS_URL", "WECHAT_SECRET", "GATEWAY_SECRET", "LOG_HASH_KEY")
SECRET_DIR = "/run/secrets/bff"
CLUSTER_SCOPED = {"Namespace"}
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# What render() knows how to apply: anything else in kustomization.yaml fails the test.
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "labels", "images", "resources"}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization() -> dict[str, Any]:
    (data,) = load_all(K8S / "kustomization.yaml")
    return data


def _retag(image: str, images: list[dict[str, str]]) -> str:
    name = re.split(r"[:@]", image, maxsplit=1)[0]
    for rule in images:
        if rule["name"] == name:
            return f"{rule.get('newName', name)}:{rule['newTag']}" if "newTag" in rule else name
    return image


def render() -> list[dict[str, Any]]:
    """The objects `kubectl kustomize deploy/kubernetes` prints, in the resources' order."""
    spec = kustomization()
    assert set(spec) <= KUSTOMIZATION_FIELDS, (
        f"render() does not apply {set(spec) - KUSTOMIZATION_FIELDS}"
    )
    objects = [copy.deepcopy(doc) for name in spec["resources"] for doc in load_all(K8S / name)]
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if "namespace" in spec:
            if obj["kind"] == "Namespace":
                meta["name"] = spec["namespace"]
            elif obj["kind"] not in CLUSTER_SCOPED:
                meta["namespace"] = spec["namespace"]
        for entry in spec.get("labels", []):
            assert not entry.get("includeSelectors"), "render() keeps the selectors as written"
            meta.setdefault("labels", {}).update(entry["pairs"])
            template = obj.get("spec", {}).get("template")
            if entry.get("includeTemplates") and template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            container["image"] = _retag(container["image"], spec.get("images", []))
    return objects


RENDERED = render()


def one(kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in RENDERED if obj["kind"] == kind]
    return found


DEPLOYMENT = one("Deployment")
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
POD_LABELS = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
CONFIG = one("ConfigMap")["data"]
(EXAMPLE_SECRET,) = load_all(K8S / "secret.example.yaml")


def settings_env() -> dict[str, str]:
    """What the pod's bff reads: the ConfigMap, and the secrets (as the example has them)."""
    return {**CONFIG, **EXAMPLE_SECRET["stringData"]}


SERVER = load_server_settings(settings_env())[1]
assert EXPOSED
IMAGE_PORT = int(EXPOSED.group(1))


def port_number(port: int | str) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in CONTAINER["ports"] if p["name"] == port]
    return int(found)


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "matchLabels only"
    return bool(selector["matchLabels"]) and selector["matchLabels"].items() <= labels.items()


# --- the kustomization and its rendering ------------------------------------------------------


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    assert not [obj for obj in RENDERED if obj["kind"] == "Secret"], "no secret values applied"


def test_the_render_sets_the_namespace_labels_and_image() -> None:
    spec = kustomization()
    for obj in RENDERED:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"]["namespace"] == spec["namespace"], obj["kind"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "bff", obj["kind"]
    assert POD_LABELS["app.kubernetes.io/part-of"] == "bff"
    (image,) = spec["images"]
    assert CONTAINER["image"] == f"{image['newName']}:{image['newTag']}"


def kustomize_command() -> list[str] | None:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(K8S)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(K8S)]
    return None


@pytest.mark.skipif(
    kustomize_command() is None,
    reason="neither kubectl nor kustomize is installed: render() alone is checked",
)
def test_kustomize_renders_what_render_does() -> None:
    command = kustomize_command()
    assert command is not None
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}
    ours = {(o["kind"], o["metadata"]["name"]): o for o in RENDERED}
    assert theirs == ours


@pytest.mark.parametrize(
    "obj",
    [o for o in RENDERED if (o["apiVersion"], o["kind"]) not in CRDS],
    ids=lambda o: f"{o['kind']}/{o['metadata']['name']}",
)
def test_every_rendered_object_validates(obj: dict[str, Any]) -> None:
    """Strictly (an unknown field fails) against the Kubernetes version `make lint` uses. The
    ServiceMonitor (a CRD) has no schema there: test_the_service_monitor_* checks it."""
    assert K8S_VERSION, "the Makefile pins K8S_VERSION"
    kubernetes_validate.validate(obj, K8S_VERSION.group(1), strict=True)


# --- the pod: image, probes, security, writable paths --------------------------------------


def test_the_port_is_bffs_everywhere() -> None:
    bind_port = int(CONFIG["GUNICORN_BIND"].rsplit(":", 1)[1])
    assert bind_port == IMAGE_PORT == port_number("http")
    (service_port,) = one("Service")["spec"]["ports"]
    assert port_number(service_port["targetPort"]) == bind_port


def test_the_probes_ask_bffs_health_routes_on_its_port() -> None:
    served = {op.path for op in OPERATIONS if op.method == "GET"}
    probes = {
        "readinessProbe": "/readyz",
        "livenessProbe": "/healthz",
        "startupProbe": "/healthz",
    }
    for probe, path in probes.items():
        get = CONTAINER[probe]["httpGet"]
        assert get["path"] == path and path in served, probe
        assert port_number(get["port"]) == IMAGE_PORT, probe
    # Out of the Service within one readiness period of the drain's 503.
    assert (
        CONTAINER["readinessProbe"]["periodSeconds"]
        * CONTAINER["readinessProbe"]["failureThreshold"]
        < SERVER.drain_s
    )
    assert "command" not in CONTAINER and "args" not in CONTAINER, "the image's CMD runs"


def test_the_pod_runs_as_the_images_user_locked_down() -> None:
    user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE, re.M)
    assert user
    pod = POD["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(user.group(1)), int(user.group(2)))
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    box = CONTAINER["securityContext"]
    assert box["allowPrivilegeEscalation"] is False
    assert box["readOnlyRootFilesystem"] is True
    assert box["capabilities"] == {"drop": ["ALL"]}
    assert POD["automountServiceAccountToken"] is False
    account = one("ServiceAccount")
    assert POD["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False


def mounts_of(kind: str) -> dict[str, dict[str, Any]]:
    """mountPath -> volume, for the container's mounts of volumes of that kind."""
    volumes = {v["name"]: v for v in POD["volumes"]}
    return {
        m["mountPath"]: volumes[m["name"]]
        for m in CONTAINER["volumeMounts"]
        if kind in volumes[m["name"]]
    }


def test_what_bff_writes_is_an_empty_dir() -> None:
    image_dir = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", DOCKERFILE)
    assert image_dir and CONFIG["PROMETHEUS_MULTIPROC_DIR"] == image_dir.group(1)
    writable = mounts_of("emptyDir")
    assert "/tmp" in writable  # noqa: S108 - gunicorn's worker heartbeat files
    assert CONFIG["PROMETHEUS_MULTIPROC_DIR"] in writable
    assert all(
        m.get("readOnly") is not True
        for m in CONTAINER["volumeMounts"]
        if m["mountPath"] in writable
    )


# --- settings and secrets ------------------------------------------------------------------


def env_example() -> dict[str, str]:
    lines = (ROOT / "config" / "production.env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line and not line.startswith("#"))
    return {key: value for key, _, value in pairs}


def test_the_config_map_holds_every_non_secret_setting() -> None:
    """Every variable of config/production.env.example but the secrets, at the example's value
    where it shows one; and bff accepts them (with the example Secret's placeholders)."""
    example = env_example()
    assert set(SECRETS) <= set(example)
    # Every secret may come from a file; the four the Deployment mounts, and those a rotation or
    # the IdP's WebHook adds the same way (docs/deploy.md): none is in the ConfigMap.
    assert set(CONFIG) == set(example) - set(FILE_VARIABLES)
    for name, value in example.items():
        if value and name in CONFIG:
            assert CONFIG[name] == value, name
    load_settings(settings_env())  # raises SettingsError on a bad value


def test_each_secret_is_a_file_of_the_secret_its_variable_names() -> None:
    (path, volume) = next(iter(mounts_of("secret").items()))
    assert path == SECRET_DIR and len(mounts_of("secret")) == 1
    assert volume["secret"]["secretName"] == EXAMPLE_SECRET["metadata"]["name"]
    assert "items" not in volume["secret"], "every key of the Secret is a file of its own name"
    assert [m for m in CONTAINER["volumeMounts"] if m["mountPath"] == path][0]["readOnly"]
    env = {e["name"]: e for e in CONTAINER.get("env", [])}
    for name in SECRETS:
        assert env[f"{name}_FILE"] == {"name": f"{name}_FILE", "value": f"{SECRET_DIR}/{name}"}
        assert name not in env and name not in CONFIG, f"{name} is a secret: a file only"
    assert set(EXAMPLE_SECRET["stringData"]) == set(SECRETS)
    for name, value in EXAMPLE_SECRET["stringData"].items():
        assert "CHANGE-ME" in value, f"secret.example.yaml: {name} is not a placeholder"
    assert [s["configMapRef"]["name"] for s in CONTAINER["envFrom"]] == [
        one("ConfigMap")["metadata"]["name"]
    ]


# --- draining, sizing, scaling ---------------------------------------------------------------


def test_the_grace_period_outlasts_the_drain_and_the_graceful_timeout() -> None:
    """The kubelet's grace period runs from the preStop hook: its sleep, then the SIGTERM, the
    drain and gunicorn's graceful timeout (which counts the drain too: the sum is a margin)."""
    command = CONTAINER["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    assert 0 < SERVER.drain_s < SERVER.graceful_timeout
    assert (
        POD["terminationGracePeriodSeconds"] > pre_stop + SERVER.drain_s + SERVER.graceful_timeout
    )


def cpu(value: str) -> float:
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def mib(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", value).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_the_resources_follow_the_benchmarks_sizing() -> None:
    """docs/performance.md, "Sizing": 2 workers on 2 cores (one per core), the MiB per worker."""
    sizing = (ROOT / "docs" / "performance.md").read_text().split("## Sizing", 1)[1]
    per_worker = re.search(r"about (\d+) MiB per worker", sizing)
    assert per_worker and "2 gevent workers on 2 cores" in sizing
    resources = CONTAINER["resources"]
    assert cpu(resources["requests"]["cpu"]) == SERVER.workers
    assert cpu(resources["limits"]["cpu"]) >= SERVER.workers
    assert mib(resources["requests"]["memory"]) >= SERVER.workers * int(per_worker.group(1))
    assert mib(resources["limits"]["memory"]) >= mib(resources["requests"]["memory"])


def test_the_selectors_select_the_pods() -> None:
    assert matches(DEPLOYMENT["spec"]["selector"], POD_LABELS)
    assert "replicas" not in DEPLOYMENT["spec"], "the autoscaler owns the count"
    assert matches(one("PodDisruptionBudget")["spec"]["selector"], POD_LABELS)
    assert one("Service")["spec"]["selector"].items() <= POD_LABELS.items()
    assert matches(one("NetworkPolicy")["spec"]["podSelector"], POD_LABELS)
    for constraint in POD["topologySpreadConstraints"]:
        assert matches(constraint["labelSelector"], POD_LABELS)


def test_the_autoscaler_scales_the_deployment_on_cpu_within_redis() -> None:
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        DEPLOYMENT["apiVersion"],
        "Deployment",
        DEPLOYMENT["metadata"]["name"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= 2  # docs/deploy.md: at least two
    # 64 connections per worker; Redis's default maxclients is 10,000 (docs/deploy.md).
    assert hpa["spec"]["maxReplicas"] * SERVER.workers * 64 < 10_000
    assert one("PodDisruptionBudget")["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]


# --- the network and the scrape ------------------------------------------------------------


def test_the_network_policy_admits_the_gateway_and_prometheus_only() -> None:
    policy = one("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert len(policy["ingress"]) == 2
    for rule in policy["ingress"]:
        assert rule["from"], "no rule admits everyone"
        for peer in rule["from"]:
            assert set(peer) == {"namespaceSelector", "podSelector"}, "pods of one namespace"
        assert [port_number(p["port"]) for p in rule["ports"]] == [IMAGE_PORT]
    egress = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress == {(6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP")}


# The fields of prometheus-operator's ServiceMonitor CRD (monitoring.coreos.com/v1) used or
# commonly set: a misspelt field is an error here as the CRD's schema would make it one.
MONITOR_SPEC = {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels"}
MONITOR_ENDPOINT = {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels"}


def test_the_service_monitor_scrapes_metrics_on_the_service() -> None:
    monitor, service = one("ServiceMonitor"), one("Service")
    assert (monitor["apiVersion"], monitor["kind"]) in CRDS
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["spec"]) <= MONITOR_SPEC
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    served = {op.path for op in OPERATIONS if op.method == "GET"}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert set(endpoint) <= MONITOR_ENDPOINT
    assert endpoint["path"] == "/metrics" and endpoint["path"] in served
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    seconds = {k: int(endpoint[k].removesuffix("s")) for k in ("interval", "scrapeTimeout")}
    assert seconds["scrapeTimeout"] <= seconds["interval"]
