"""Static checks of deploy/: Kubernetes manifests against the API schemas, compose, haproxy and the Dockerfile.

No container engine runs here, so the image is never built; these tests check what can be checked
without one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.config import ENVIRONMENT

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file, empty ones left out."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resources(kind: str) -> list[dict[str, Any]]:
    """Every resource of `kind` in deploy/k8s."""
    return [d for f in sorted(K8S.glob("*.yaml")) if f.name != "nats-values.yaml"
            for d in documents(f) if d.get("kind") == kind]


CORE = [d for f in ("roomlog.yaml",) for d in documents(K8S / f)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("resource", CORE, ids=lambda r: f"{r['kind']}/{r['metadata']['name']}")
def test_core_manifests_validate_strictly_against_kubernetes_schemas(resource: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


def test_the_manifests_hold_each_kind_roomlog_needs() -> None:
    kinds = {r["kind"] for r in CORE}
    assert {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget"} <= kinds


def test_the_deployment_probes_readiness_and_liveness_on_the_health_endpoints_and_runs_as_non_root() -> None:
    [deployment] = resources("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    # Long enough for the drain after SIGTERM (preStop sleep + server.shutdown + appender flush).
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_selectors_of_service_autoscaler_and_budget_match_the_deployment() -> None:
    [deployment], [service], [hpa], [pdb] = (resources(k) for k in (
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_configmap_and_secret_set_only_settings_roomlog_reads() -> None:
    names = {k for kind in ("ConfigMap", "Secret") for r in resources(kind) if r["metadata"]["name"] == "roomlog"
             for k in (r.get("data") or r.get("stringData") or {})}
    assert names and names <= set(ENVIRONMENT), names - set(ENVIRONMENT)
    assert {"DATABASE_URL", "DATABASE_REPLICA_URLS", "NATS_URL", "ROOMLOG_NATS_REPLICAS"} <= names


def test_the_cloudnativepg_cluster_has_a_primary_with_streaming_replicas_and_backups() -> None:
    # CRDs are not in kubernetes-validate's schemas: checked for the fields CloudNativePG requires.
    [cluster] = resources("Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] >= 2
    assert spec["bootstrap"]["initdb"]["database"] == "roomlog"
    assert re.fullmatch(r"\d+[GM]i", spec["storage"]["size"])
    assert spec["postgresql"]["parameters"]["synchronous_commit"] == "on"
    assert spec["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
    [scheduled] = resources("ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    # The Secret's URLs point at the services the operator creates: <cluster>-rw and <cluster>-ro.
    [secret] = [r for r in resources("Secret") if r["metadata"]["name"] == "roomlog"]
    assert f"@{cluster['metadata']['name']}-rw:" in secret["stringData"]["DATABASE_URL"]
    assert f"@{cluster['metadata']['name']}-ro:" in secret["stringData"]["DATABASE_REPLICA_URLS"]


def test_nats_helm_values_make_a_three_node_jetstream_cluster() -> None:
    [values] = documents(K8S / "nats-values.yaml")
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3, "name": "roomlog"}
    assert values["config"]["jetstream"]["enabled"] and values["config"]["jetstream"]["fileStore"]["enabled"]
    [configmap] = [r for r in resources("ConfigMap") if r["metadata"]["name"] == "roomlog"]
    assert configmap["data"]["ROOMLOG_NATS_REPLICAS"] == "3"
    assert configmap["data"]["NATS_URL"].count("nats://") == 3


# --- compose ---------------------------------------------------------------------------------------

COMPOSE = documents(DEPLOY / "compose.yaml")[0]
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"}
SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports", "volumes",
                "depends_on", "healthcheck", "restart", "user", "stop_grace_period", "configs", "secrets"}


def test_compose_has_only_compose_spec_keys_and_every_reference_resolves() -> None:
    assert set(k for k in COMPOSE if not k.startswith("x-")) <= TOP_LEVEL
    for name, service in SERVICES.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            assert condition["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition["condition"] == "service_healthy":
                assert not SERVICES[dependency].get("healthcheck", {}).get("disable"), (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in COMPOSE["volumes"], (name, source)


def test_compose_runs_three_roomlog_instances_on_an_r3_nats_cluster_and_a_replicated_postgres() -> None:
    instances = [n for n in SERVICES if re.fullmatch(r"roomlog-\d", n)]
    assert len(instances) == 3
    for name in instances:
        env = SERVICES[name]["environment"]
        assert set(env) <= set(ENVIRONMENT), set(env) - set(ENVIRONMENT)
        assert env["ROOMLOG_NATS_REPLICAS"] == "3"
        assert env["NATS_URL"].count("nats://") == 3
        assert "@postgres-primary:" in env["DATABASE_URL"] and "@postgres-replica:" in env["DATABASE_REPLICA_URLS"]
    nodes = [n for n in SERVICES if re.fullmatch(r"nats-\d", n)]
    assert len(nodes) == 3
    for name in nodes:
        command = SERVICES[name]["command"]
        assert "-js" in command and "--cluster_name" in command
        routes = command[command.index("--routes") + 1]
        assert {f"nats://{other}:6222" for other in nodes if other != name} == set(routes.split(","))
    replica_script = (DEPLOY / "compose" / "replica-start.sh").read_text()
    assert "pg_basebackup" in replica_script and " -R" in replica_script


def test_haproxy_balances_every_instance_with_websocket_tunnels_and_ready_checks() -> None:
    config = (DEPLOY / "haproxy.cfg").read_text()
    servers = set(re.findall(r"^\s*server (\S+) (\S+):8080 check", config, re.M))
    assert {(n, n) for n in SERVICES if re.fullmatch(r"roomlog-\d", n)} == servers
    assert re.search(r"^\s*timeout tunnel \d+[smh]", config, re.M)  # upgraded WebSockets stay open
    assert "option httpchk GET /health/ready" in config


# --- Dockerfile ------------------------------------------------------------------------------------

BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|libpq-dev|python3-dev|cc)\b")


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split at each FROM."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    result: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        result[-1].append(line)
    return result


def test_the_image_is_multi_stage_and_its_final_stage_has_no_build_tools_and_a_non_root_user() -> None:
    all_stages = stages((DEPLOY / "Dockerfile").read_text())
    assert len(all_stages) >= 2
    build, final = all_stages[0], all_stages[-1]
    assert any(BUILD_TOOLS.search(line) for line in build)  # the compilers are there, in the build stage
    assert not [line for line in final if BUILD_TOOLS.search(line)]
    assert not [line for line in final if re.match(r"RUN .*(apt-get|apk|pip) .*install", line)]
    copies = [line for line in final if line.startswith("COPY")]
    assert copies and all("--from=build" in line for line in copies)
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert final[-1].startswith("CMD") and any(line.startswith("ENTRYPOINT") for line in final)
    assert not [line for line in final if re.match(r"ENV .*(DATABASE_URL|NATS_URL)", line)]  # external, by env
