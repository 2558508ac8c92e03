"""The Kubernetes example in docs/deploy/kubernetes is valid and says what the docs promise.

Every YAML document is validated offline against the Kubernetes OpenAPI schemas shipped with
``kubernetes_validate`` (strict: unknown fields are errors), then checked for the properties
that matter in production: probes, the single scheduler, non-root containers, the worker HPA
and settings that calsync actually reads.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.fernet import Fernet

from calsync.cli import build_parser as _cli_parser
from calsync.config import PREFIX, ConfigError, Mode, Settings

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "docs" / "deploy" / "kubernetes"
CONFIG_SOURCE = ROOT / "calsync" / "config.py"

# The newest Kubernetes version kubernetes_validate 1.37 ships schemas for. Pinned so that a
# package upgrade cannot silently change what "valid" means.
KUBERNETES_VERSION = "1.37.0"

PLACEHOLDER = "REPLACE_ME"
POD_OWNERS = {"Deployment", "Job"}

Doc = dict[str, Any]


def _load() -> list[tuple[str, Doc]]:
    docs: list[tuple[str, Doc]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
                docs.append((path.name, doc))
    return docs


DOCS = _load()


def _id(entry: tuple[str, Doc]) -> str:
    name, doc = entry
    return f"{name}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def one(kind: str, name: str) -> Doc:
    found = [doc for _, doc in DOCS if doc.get("kind") == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    spec = doc["spec"]["template"]["spec"]
    assert isinstance(spec, dict)
    return spec


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def pod_owners() -> list[Doc]:
    return [doc for _, doc in DOCS if doc["kind"] in POD_OWNERS]


def setting_names_in_config_source() -> set[str]:
    """Every NAME that calsync/config.py reads as CALSYNC_<NAME> through its EnvReader."""
    source = CONFIG_SOURCE.read_text()
    pattern = (
        r'\benv\.(?:text|required|integer|choice|path|flag|url|networks)\(\s*"([A-Z][A-Z0-9_]*)"'
    )
    return {PREFIX + name for name in re.findall(pattern, source)}


def environment_data() -> dict[str, str]:
    """The CALSYNC_* environment the ConfigMap and Secret give every container."""
    config = one("ConfigMap", "calsync-config")["data"]
    secret = one("Secret", "calsync-secrets")["stringData"]
    overlap = config.keys() & secret.keys()
    assert not overlap, f"set in both the ConfigMap and the Secret: {sorted(overlap)}"
    return {str(k): str(v) for k, v in {**config, **secret}.items()}


def filled_in(environment: dict[str, str]) -> dict[str, str]:
    """The environment with each placeholder replaced by a valid dummy value of its kind."""
    dummies = {
        "CALSYNC_JWT_SECRET": "x" * 48,
        "CALSYNC_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    result = {}
    for name, value in environment.items():
        if PLACEHOLDER in value:
            value = dummies.get(name, value.replace(PLACEHOLDER, "dummy-value"))
        result[name] = value
    return result


# --- the files themselves ---------------------------------------------------------------------


def test_kubernetes_validate_ships_the_pinned_version() -> None:
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


def test_the_example_has_every_object_the_docs_describe() -> None:
    present = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCS}
    assert present == {
        ("ConfigMap", "calsync-config"),
        ("Secret", "calsync-secrets"),
        ("Job", "calsync-migrate"),
        ("Deployment", "calsync-api"),
        ("Service", "calsync-api"),
        ("Deployment", "calsync-worker"),
        ("HorizontalPodAutoscaler", "calsync-worker"),
        ("PodDisruptionBudget", "calsync-api"),
        ("PodDisruptionBudget", "calsync-worker"),
        ("Deployment", "calsync-webhooks"),
        ("Service", "calsync-webhooks"),
        ("PodDisruptionBudget", "calsync-webhooks"),
        ("Deployment", "calsync-scheduler"),
    }
    assert all("namespace" not in doc["metadata"] for _, doc in DOCS), "keep it namespace-free"


@pytest.mark.parametrize("entry", DOCS, ids=_id)
def test_every_document_is_valid_against_the_kubernetes_schema(entry: tuple[str, Doc]) -> None:
    _, doc = entry
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    """Guards the test above against validating nothing."""
    broken = yaml.safe_load(yaml.safe_dump(one("Deployment", "calsync-scheduler")))
    broken["spec"]["replicaz"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- processes ---------------------------------------------------------------------------------


def test_each_process_runs_the_documented_command() -> None:
    def command(kind: str, name: str) -> list[str]:
        (container,) = pod_spec(one(kind, name))["containers"]
        return list(container["command"])

    assert command("Deployment", "calsync-api") == [
        "calsync",
        "serve",
        "--host",
        "0.0.0.0",  # noqa: S104 - the pod's address, as in compose.yaml
        "--port",
        "8000",
    ]
    assert command("Deployment", "calsync-worker") == [
        "calsync",
        "worker",
        "--processes",
        "2",
        "--threads",
        "8",
        "--shutdown-timeout",
        "150",
        "--metrics-port",
        "9191",
    ]
    assert command("Deployment", "calsync-webhooks") == [
        "calsync",
        "serve-webhooks",
        "--host",
        "0.0.0.0",  # noqa: S104 - the pod's address
        "--port",
        "8001",
    ]
    assert command("Deployment", "calsync-scheduler") == ["calsync", "scheduler"]
    assert command("Job", "calsync-migrate") == ["calsync", "migrate"]


def test_every_process_runs_the_same_image() -> None:
    images = {c["image"] for doc in pod_owners() for c in containers(doc)}
    assert len(images) == 1, f"the migrate Job and the Deployments must share one image: {images}"


def test_api_probes_point_at_healthz_and_readyz() -> None:
    (api,) = pod_spec(one("Deployment", "calsync-api"))["containers"]
    port = next(p for p in api["ports"] if p["containerPort"] == 8000)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = api[probe]["httpGet"]
        assert http["path"] == path, probe
        assert http["port"] in {8000, port["name"]}, probe


def test_api_metrics_are_scraped_on_their_own_port_which_the_service_does_not_expose() -> None:
    deployment = one("Deployment", "calsync-api")
    (api,) = pod_spec(deployment)["containers"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    env = {item["name"]: item["value"] for item in api.get("env", [])}
    metrics = next(p for p in api["ports"] if p["name"] == "metrics")
    assert annotations["prometheus.io/port"] == env["CALSYNC_METRICS_PORT"]
    assert metrics["containerPort"] == int(env["CALSYNC_METRICS_PORT"])
    service_ports = one("Service", "calsync-api")["spec"]["ports"]
    assert [p["targetPort"] for p in service_ports] == ["http"]


def test_api_service_selects_the_api_pods() -> None:
    deployment = one("Deployment", "calsync-api")
    service = one("Service", "calsync-api")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["replicas"] == 2


def test_worker_probes_check_the_process_and_its_dependencies() -> None:
    (worker,) = containers(one("Deployment", "calsync-worker"))
    (port,) = worker["ports"]
    assert port["containerPort"] == 9191
    assert worker["command"][worker["command"].index("--metrics-port") + 1] == "9191"
    liveness = worker["livenessProbe"]["httpGet"]
    assert liveness["path"] == "/metrics"
    assert liveness["port"] in {9191, port["name"]}
    # The readiness checks run in the pod's metrics process, not in a new Python each time
    readiness = worker["readinessProbe"]["httpGet"]
    assert readiness["path"] == "/readyz"
    assert readiness["port"] in {9191, port["name"]}
    assert worker["readinessProbe"]["periodSeconds"] >= 30


@pytest.mark.parametrize("component", ["api", "worker", "webhooks"])
def test_a_disruption_budget_keeps_all_but_one_pod_of_each_scaled_deployment(
    component: str,
) -> None:
    budget = one("PodDisruptionBudget", f"calsync-{component}")
    deployment = one("Deployment", f"calsync-{component}")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
    # It matches no pod of another component
    for _, other in DOCS:
        if other["kind"] == "Deployment" and other is not deployment:
            labels = other["spec"]["template"]["metadata"]["labels"]
            assert not budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_worker_metrics_directory_is_on_a_writable_per_pod_volume() -> None:
    deployment = one("Deployment", "calsync-worker")
    (worker,) = containers(deployment)
    env = {e["name"]: e["value"] for e in worker["env"]}
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    holding = [name for name, path in mounts.items() if directory.startswith(path + "/")]
    assert holding, f"{directory} is not under a mounted volume"
    assert all("emptyDir" in volumes[name] for name in holding), "one directory per pod"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9191"


def test_the_scheduler_serves_nothing() -> None:
    for container in containers(one("Deployment", "calsync-scheduler")):
        assert "ports" not in container


def cli_commands() -> set[str]:
    parser = _cli_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    return set(commands.choices or {})


def test_scheduler_is_a_single_replica_replaced_not_rolled() -> None:
    spec = one("Deployment", "calsync-scheduler")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_workers_get_longer_to_finish_their_jobs_than_the_api() -> None:
    worker = pod_spec(one("Deployment", "calsync-worker"))["terminationGracePeriodSeconds"]
    api = pod_spec(one("Deployment", "calsync-api"))["terminationGracePeriodSeconds"]
    assert worker > api
    assert worker >= 60  # at least compose.yaml's stop_grace_period for the worker


def test_hpa_scales_the_worker_deployment_on_queue_depth() -> None:
    hpa = one("HorizontalPodAutoscaler", "calsync-worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "calsync-worker",
    }
    one("Deployment", "calsync-worker")  # the target exists
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    (metric,) = spec["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "calsync_queue_depth"
    # The HPA owns the worker count; a replicas field would fight it on every apply.
    assert "replicas" not in one("Deployment", "calsync-worker")["spec"]


# --- security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", pod_owners(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_container_runs_as_non_root_on_a_read_only_root(doc: Doc) -> None:
    spec = pod_spec(doc)
    pod = spec.get("securityContext", {})
    for container in containers(doc):
        effective = {**pod, **container.get("securityContext", {})}
        name = container["name"]
        assert effective.get("runAsNonRoot") is True, name
        # The image's user is a name; Kubernetes can verify non-root only with a numeric UID.
        assert isinstance(effective.get("runAsUser"), int), name
        assert effective["runAsUser"] != 0, name
        assert effective.get("allowPrivilegeEscalation") is False, name
        assert effective.get("readOnlyRootFilesystem") is True, name
        assert "ALL" in effective.get("capabilities", {}).get("drop", []), name
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"  # noqa: S108


@pytest.mark.parametrize("doc", pod_owners(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_container_reads_the_settings_it_needs(doc: Doc) -> None:
    for container in containers(doc):
        sources = container.get("envFrom", [])
        if container.get("command") == ["calsync", "migrate"]:
            # migrating needs the database URL alone: no Google, JWT or Redis secret
            assert sources == [], container["name"]
            assert [e["name"] for e in container["env"]] == ["CALSYNC_DATABASE_URL"]
            reference = container["env"][0]["valueFrom"]["secretKeyRef"]
            assert reference == {"name": "calsync-secrets", "key": "CALSYNC_DATABASE_URL"}
        else:
            assert {"configMapRef": {"name": "calsync-config"}} in sources, container["name"]
            assert {"secretRef": {"name": "calsync-secrets"}} in sources, container["name"]
        resources = container["resources"]
        assert resources["requests"]["cpu"], container["name"]
        assert resources["limits"]["memory"], container["name"]


def test_the_secret_template_holds_placeholders_only() -> None:
    secret = one("Secret", "calsync-secrets")
    assert "data" not in secret, "use stringData with placeholders, never encoded values"
    for name, value in secret["stringData"].items():
        assert PLACEHOLDER in str(value), f"{name} looks like a real secret"


# --- settings ----------------------------------------------------------------------------------


def test_the_config_source_regex_finds_the_settings() -> None:
    """Guards the next test against comparing with an empty or partial set."""
    names = setting_names_in_config_source()
    assert {
        "CALSYNC_DATABASE_URL",
        "CALSYNC_REDIS_URL",
        "CALSYNC_PUBLIC_URL",
        "CALSYNC_JWT_SECRET",
        "CALSYNC_ENCRYPTION_KEYS",
        "CALSYNC_GOOGLE_CLIENT_ID",
        "CALSYNC_LOG_LEVEL",
    } <= names


def test_every_variable_set_is_a_real_calsync_setting() -> None:
    unknown = environment_data().keys() - setting_names_in_config_source()
    assert not unknown, f"not read by calsync/config.py: {sorted(unknown)}"


def test_the_configuration_parses_in_production_mode_once_filled_in() -> None:
    settings = Settings.from_env(filled_in(environment_data()))
    assert settings.mode is Mode.PRODUCTION
    assert not settings.uses_emulator, "production talks to the real Google API"
    assert settings.public_url.startswith("https://")


def test_the_unedited_template_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environment_data())
    problems = "\n".join(caught.value.problems)
    assert "CALSYNC_JWT_SECRET" in problems
    assert "CALSYNC_ENCRYPTION_KEYS" in problems


def test_the_scheduler_is_restarted_when_its_ticks_stop(tmp_path: Path) -> None:
    (scheduler,) = containers(one("Deployment", "calsync-scheduler"))
    env = {e["name"]: e["value"] for e in scheduler["env"]}
    path = env["CALSYNC_SCHEDULER_ALIVE_FILE"]
    mounts = [m["mountPath"] for m in scheduler["volumeMounts"]]
    assert any(path.startswith(mount + "/") for mount in mounts)  # the root is read-only
    command = scheduler["livenessProbe"]["exec"]["command"]
    ours = tmp_path / "scheduler.alive"
    probe = [sys.executable, "-c", command[2].replace(path, str(ours))]
    assert command[:2] == ["python", "-c"]
    assert path in command[2]
    assert subprocess.run(probe).returncode != 0  # no tick yet
    ours.touch()
    assert subprocess.run(probe).returncode == 0
    os.utime(ours, (time.time() - 600, time.time() - 600))
    assert subprocess.run(probe).returncode != 0
