"""deploy/kubernetes: the objects Kustomize renders are valid Kubernetes (checked against the API's JSON schemas,
offline), run the gateway as the code expects -- the environment variables it reads, the configuration it accepts,
probes on /healthz and /readyz, state shared across replicas -- and are sized from the benchmark's figures."""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.settings import GatewaySettings
from gateway.workers import refuse_process_state
from tests.deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.30"  # the oldest release the manifests are for: the preStop sleep action is on by default from it
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(MANIFESTS)


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _gateway(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _one(objects, "Deployment", "onewindow")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["onewindow"]
    container: dict[str, Any] = containers[0]
    return container


def _settings_variables() -> set[str]:
    """The environment variables the gateway process reads (gateway/settings.py)."""
    prefix = GatewaySettings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in GatewaySettings.model_fields}


def _config_variables(text: str) -> dict[str, bool]:
    """The ``${NAME}`` a configuration file names, and whether each has a default."""
    found: dict[str, bool] = {}
    for name, default in _VARIABLE.findall(text):
        found[name] = found.get(name, False) or bool(default)
    return found


def _environment(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The gateway container's environment, as the pod would get it, with made-up secrets of the right shape."""
    container = _gateway(objects)
    environment: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        environment |= _one(objects, "ConfigMap", ref["configMapRef"]["name"])["data"]
    for variable in container["env"]:
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
            continue
        key = variable["valueFrom"]["secretKeyRef"]["key"]
        environment[variable["name"]] = {
            "redis-url": "redis://:password@onewindow-redis:6379/0",
            "database-url": "postgresql+asyncpg://onewindow:password@onewindow-postgres:5432/onewindow",
            "cache-encryption-key": base64.b64encode(bytes(range(32))).decode(),
        }.get(key, f"{key}-made-up-for-the-test-0123456789abcdef")
    return environment


def _configuration(objects: list[dict[str, Any]], tmp_path: Path) -> GatewayConfig:
    path = tmp_path / "onewindow.yaml"
    path.write_text(_one(objects, "ConfigMap", "onewindow-config")["data"]["onewindow.yaml"], encoding="utf-8")
    return load_config(path, variables=_environment(objects))


def test_every_object_is_valid_kubernetes(objects: list[dict[str, Any]]) -> None:
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    assert kinds == [
        "ConfigMap/onewindow-config",
        "ConfigMap/onewindow-environment",
        "Deployment/onewindow",
        "Deployment/onewindow-redis",
        "HorizontalPodAutoscaler/onewindow",
        "PodDisruptionBudget/onewindow",
        "Service/onewindow",
        "Service/onewindow-postgres",
        "Service/onewindow-redis",
        "StatefulSet/onewindow-postgres",
    ]
    for obj in objects:  # strict: a field the API does not have is an error, not ignored
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def test_the_validator_refuses_a_misspelt_field(objects: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(_one(objects, "Deployment", "onewindow"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_gateway_reads_every_variable_the_manifests_set_and_gets_every_one_it_needs(
    objects: list[dict[str, Any]],
) -> None:
    environment = _environment(objects)
    wanted = _config_variables(_one(objects, "ConfigMap", "onewindow-config")["data"]["onewindow.yaml"])
    read = _settings_variables() | set(wanted)
    assert set(environment) <= read, f"set but read by nothing: {sorted(set(environment) - read)}"
    required = {name for name, has_default in wanted.items() if not has_default}
    assert required <= set(environment), f"named by the configuration, not set: {sorted(required - set(environment))}"
    # the container listens where its probes and Service look, on every address of the pod
    container = _gateway(objects)
    assert environment["ONEWINDOW_HOST"] == "0.0.0.0"
    assert container["ports"] == [
        {"name": "http", "containerPort": int(environment["ONEWINDOW_PORT"]), "protocol": "TCP"}
    ]
    GatewaySettings.model_validate(
        {k.removeprefix("ONEWINDOW_").lower(): v for k, v in environment.items() if k in _settings_variables()}
    )


def test_every_secret_the_manifests_read_is_listed_for_the_operator(objects: list[dict[str, Any]]) -> None:
    listed = {
        line.partition("=")[0]
        for line in (MANIFESTS / "secrets.env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    read: set[str] = set()
    for obj in objects:
        template = obj.get("spec", {}).get("template")
        for container in template["spec"]["containers"] if template else []:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    assert ref["name"] == "onewindow-secrets"
                    read.add(ref["key"])
    assert read == listed
    assert not any(o["kind"] == "Secret" for o in objects)  # secrets come from the cluster, never from the repository


def test_the_configuration_is_one_serve_accepts_in_production_with_state_every_replica_shares(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    config = _configuration(objects, tmp_path)
    assert config.security.production
    create_app(config)  # what `onewindow check` and `serve` build: a wrong setting raises ConfigError
    replicas = _one(objects, "Deployment", "onewindow")["spec"]["replicas"]
    refuse_process_state(config, replicas)  # cache, rate limits and audit outside any one process
    assert config.auth.audit is not None
    assert config.auth.audit.url.startswith("postgresql+asyncpg://onewindow:")
    assert config.cache.url.startswith("redis://")
    assert config.security.rate_limit_storage == config.cache.url


def test_the_configuration_is_mounted_where_serve_reads_it_and_updates_reach_the_pod(
    objects: list[dict[str, Any]],
) -> None:
    pod = _one(objects, "Deployment", "onewindow")["spec"]["template"]["spec"]
    container = _gateway(objects)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert "subPath" not in mount  # a subPath mount never sees the ConfigMap change: no hot reload
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == "onewindow-config"
    assert container["args"] == ["serve", f"{mount['mountPath']}/onewindow.yaml"]
    assert "--reload-interval" not in container["args"]  # the default: polled every 2 s


def test_probes_liveness_on_healthz_readiness_on_readyz(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    container = _gateway(objects)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    paths = {getattr(route, "path", None) for route in create_app(_configuration(objects, tmp_path)).routes}
    assert {"/healthz", "/readyz"} <= paths


def test_replicas_survive_a_voluntary_disruption(objects: list[dict[str, Any]]) -> None:
    deployment = _one(objects, "Deployment", "onewindow")
    budget = _one(objects, "PodDisruptionBudget", "onewindow")["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["replicas"] >= 2
    assert budget["maxUnavailable"] < deployment["spec"]["replicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    autoscaler = _one(objects, "HorizontalPodAutoscaler", "onewindow")["spec"]
    assert autoscaler["minReplicas"] == deployment["spec"]["replicas"]
    service = _one(objects, "Service", "onewindow")["spec"]
    assert service["selector"].items() <= labels.items()


def test_resources_follow_the_benchmark(objects: list[dict[str, Any]]) -> None:
    """One process uses one core (README: --workers); the memory limit leaves room over the resident size the
    benchmark measured after a minute of mixed load (bench/results/latest.md)."""
    figures = (ROOT / "bench" / "results" / "latest.md").read_text(encoding="utf-8")
    found = re.search(r"RSS after 60 s of mixed load: ([\d.]+) MB", figures)
    assert found is not None, "bench/results/latest.md no longer gives the gateway's RSS"
    rss = float(found[1]) * 2**20
    resources = _gateway(objects)["resources"]
    assert resources["requests"]["cpu"] == "1"
    assert _bytes(resources["requests"]["memory"]) >= 1.5 * rss
    assert _bytes(resources["limits"]["memory"]) >= 3 * rss
    assert "cpu" not in resources["limits"]  # throttling a CPU-bound process shows as p99, not as a clear failure


def test_every_pod_runs_as_a_user_without_privileges(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        template = obj.get("spec", {}).get("template")
        if template is None:
            continue
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert _gateway(objects)["securityContext"]["readOnlyRootFilesystem"] is True


def test_rendering_matches_kubectl_kustomize_where_installed(objects: list[dict[str, Any]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the Python rendering is checked alone")
    rendered = subprocess.run([kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True)
    theirs = sorted(yaml.safe_load_all(rendered.stdout), key=_identity)
    assert sorted(objects, key=_identity) == theirs


def _identity(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _bytes(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity)
