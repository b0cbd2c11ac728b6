"""deploy/kubernetes: valid against the Kubernetes API schemas, and consistent with the service.

The schemas are kubernetes-validate's, shipped inside the package: nothing is fetched. The
other checks hold the manifests to what the service really reads and serves: its settings
loader, its roles, its probe paths, the Containerfile's user.
"""

from __future__ import annotations

import copy
import inspect
import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, all_versions

from sync_service.config import Role, documented_settings, load_settings
from sync_service.runtime.worker import Worker
from tests.deploy.manifests import (
    EXAMPLES,
    KUBE,
    KUSTOMIZATION,
    REPO,
    Manifest,
    Resource,
    container,
    load,
    manifests,
    of_kind,
    one,
    quantity,
    selects,
)

# The oldest Kubernetes the README promises, and the newest the package ships schemas for.
VERSIONS = ("1.27.0", all_versions()[-1])
SETTINGS = {name for name, _ in documented_settings()}


def validate(resource: Resource, version: str) -> None:
    """Strict: a misspelt or misplaced field is an error, not ignored as the API server might."""
    kubernetes_validate.validate(resource, version, strict=True)


def deployments() -> list[Resource]:
    return [m.resource for m in of_kind("Deployment")]


def pod(deployment: Resource) -> Resource:
    return dict(deployment["spec"]["template"]["spec"])


def env_of(deployment: Resource) -> dict[str, Any]:
    """The container's environment: its ConfigMaps, then its own variables (as Kubernetes)."""
    box = container(deployment)
    env: dict[str, Any] = {}
    for source in box.get("envFrom", []):
        env.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
    for var in box.get("env", []):
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


def test_the_schemas_ship_with_the_package() -> None:
    assert len(all_versions()) >= 5
    assert VERSIONS[0] in all_versions()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", manifests(), ids=lambda m: f"{m.file}:{m.kind}/{m.name}")
def test_every_manifest_validates(manifest: Manifest, version: str) -> None:
    validate(manifest.resource, version)  # SchemaNotFoundError (an unknown kind) fails too


def test_the_validation_catches_broken_manifests() -> None:
    good = one("Deployment", "sync-engine")
    validate(good, VERSIONS[-1])
    typed, misspelt = copy.deepcopy(good), copy.deepcopy(good)
    typed["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesystem"
    ] = "yes"
    box = misspelt["spec"]["template"]["spec"]["containers"][0]
    box["livnessProbe"] = box.pop("livenessProbe")  # would be ignored, leaving no probe
    for broken in (typed, misspelt):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, VERSIONS[-1])
    with pytest.raises(SchemaNotFoundError):
        validate({**good, "kind": "Deploymnet"}, VERSIONS[-1])


def test_the_kustomization_applies_every_manifest_but_the_examples() -> None:
    (kustomization,) = load(KUSTOMIZATION)
    listed = set(kustomization["resources"])
    files = {p.name for p in KUBE.glob("*.yaml")} - {KUSTOMIZATION.name, *EXAMPLES}
    assert listed == files
    images = {image["name"] for image in kustomization["images"]}
    assert {container(d)["image"] for d in deployments()} <= images


def test_the_deployments_run_every_role_and_each_serves_http() -> None:
    roles = [env_of(d)["SYNC_ROLES"].split(",") for d in deployments()]
    assert {Role(r) for names in roles for r in names} == set(Role)
    # The api role is what serves /healthz, /readyz and /metrics: every replica needs it.
    assert all("api" in names for names in roles)
    for deployment in deployments():
        # Two of each: a second dispatcher to take over, engines to share the queue.
        assert deployment["spec"]["replicas"] >= 2, deployment["metadata"]["name"]


@pytest.mark.parametrize("name", ["sync-control", "sync-engine"])
def test_the_service_loads_the_deployments_settings(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = one("Deployment", name)
    env = env_of(deployment)
    unknown = {k for k in env if k.startswith("SYNC_")} - SETTINGS
    assert not unknown, f"not settings of the service: {unknown}"
    for key in [k for k in os.environ if k.startswith("SYNC_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if isinstance(value, dict):  # valueFrom: the pod's name
            assert value == {"fieldRef": {"fieldPath": "metadata.name"}}, key
            value = f"{name}-7d9f8-abcde"
        elif key.endswith("_FILE"):
            value = str(_secret_copy(deployment, value, tmp_path))
        monkeypatch.setenv(key, value)
    settings = load_settings()
    box = container(deployment)
    assert settings.database.resolved_url(), "no database URL: the pod would start pgserver"
    assert settings.api.resolved_token() is not None
    assert settings.api.port == box["ports"][0]["containerPort"]
    assert settings.process.engine_name == f"{name}-7d9f8-abcde"
    assert settings.process.role_set == {Role(r) for r in env["SYNC_ROLES"].split(",")}


def _secret_copy(deployment: Resource, path: str, into: Path) -> Path:
    """The example Secret's value of the key mounted at `path`, written under `into`."""
    mounted = Path(path)
    mount = _mount_at(deployment, mounted.parent)
    (volume,) = [v for v in pod(deployment)["volumes"] if v["name"] == mount["name"]]
    secret = one("Secret", volume["secret"]["secretName"])
    assert mounted.name in secret["stringData"], f"{path}: no such key in the Secret"
    copy_path = into / mounted.name
    copy_path.write_text(secret["stringData"][mounted.name])
    return copy_path


def _mount_at(deployment: Resource, directory: Path) -> Resource:
    mounts = container(deployment)["volumeMounts"]
    (mount,) = [m for m in mounts if Path(m["mountPath"]) == directory]
    return dict(mount)


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_secrets_are_files_outside_the_servers_secret_directory(deployment: Resource) -> None:
    env = env_of(deployment)
    files = {k: Path(v) for k, v in env.items() if k.endswith("_FILE")}
    assert {"SYNC_DATABASE_URL_FILE", "SYNC_API_TOKEN_FILE"} <= files.keys()
    assert "SYNC_DATABASE_URL" not in env and "SYNC_API_TOKEN" not in env
    server_dir = Path(env["SYNC_SECRET_DIR"])
    _mount_at(deployment, server_dir)  # the servers' Secret is mounted there
    for key, path in files.items():
        # A server added through the API may name any file inside SYNC_SECRET_DIR.
        assert not path.is_relative_to(server_dir), f"{key}: a server could read it"
        assert _mount_at(deployment, path.parent)["readOnly"] is True


def _containerfile_user() -> int:
    lines = (REPO / "Containerfile").read_text().splitlines()
    (user,) = [line.split()[1] for line in lines if line.startswith("USER ")]
    return int(user.split(":")[0])


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_pods_run_non_root_on_a_read_only_root(deployment: Resource) -> None:
    spec, box = pod(deployment), container(deployment)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == _containerfile_user()
    assert spec["automountServiceAccountToken"] is False
    security = box["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in box["volumeMounts"]:
        volume = volumes[mount["name"]]
        # What may be written is memory only: state lives in PostgreSQL.
        assert mount.get("readOnly") is True or "emptyDir" in volume, mount
        assert "hostPath" not in volume and "persistentVolumeClaim" not in volume
    drain = inspect.signature(Worker).parameters["grace_seconds"].default
    assert spec["terminationGracePeriodSeconds"] >= drain + 5


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_probes_and_scrape_annotations_reach_the_api(deployment: Resource) -> None:
    box = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in box["ports"]}
    bind_port = int(env_of(deployment)["SYNC_API_BIND"].rpartition(":")[2])
    assert ports == {"http": bind_port}
    paths = {kind: box[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    paths["readinessProbe"] = box["readinessProbe"]["httpGet"]
    assert {k: v["path"] for k, v in paths.items()} == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert all(ports.get(v["port"], v["port"]) == bind_port for v in paths.values())
    notes = deployment["spec"]["template"]["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert int(notes["prometheus.io/port"]) == bind_port
    assert notes["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["metadata"]["name"])
def test_resources_are_requested_and_limited(deployment: Resource) -> None:
    resources = container(deployment)["resources"]
    for what in ("cpu", "memory"):
        request, limit = resources["requests"][what], resources["limits"][what]
        assert 0 < quantity(request) <= quantity(limit), (what, request, limit)
    assert quantity(resources["limits"]["memory"]) >= 256 * 2**20


def test_database_connections_fit_a_small_managed_server() -> None:
    """Every replica's pool, surge pods of a rolling update included, under 100 connections.

    100 is PostgreSQL's default max_connections and about what the smaller managed plans
    allow; the README tells how to size it for more engines.
    """
    total = 0
    for deployment in deployments():
        spec = deployment["spec"]
        pods = spec["replicas"] + int(spec["strategy"]["rollingUpdate"]["maxSurge"])
        total += pods * int(env_of(deployment)["SYNC_DATABASE_POOL_SIZE"])
    assert total <= 80, total  # leaves room for the operator's CLI and the provider's own


def test_the_service_and_the_budgets_select_the_deployments_pods() -> None:
    labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments()
    }
    (service,) = [m.resource for m in of_kind("Service")]
    chosen = [n for n, lab in labels.items() if selects(service["spec"]["selector"], lab)]
    assert chosen == ["sync-control"]  # the admin API; engines run passes
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    budgets = of_kind("PodDisruptionBudget")
    assert len(budgets) == len(labels)
    for budget in budgets:
        spec = budget.resource["spec"]
        (target,) = [
            n for n, lab in labels.items() if selects(spec["selector"]["matchLabels"], lab)
        ]
        assert spec["maxUnavailable"] < one("Deployment", target)["spec"]["replicas"]
