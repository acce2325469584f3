"""Kubernetes manifests: every kustomize overlay renders, validates and follows the hardening rules.

Each directory under deploy/k8s/overlays is rendered with `kubectl kustomize`, and every document is
validated with kubernetes-validate (strict: unknown fields are errors) against Kubernetes 1.30.0.
Custom resources (KEDA) have no schema there: they are listed explicitly, skipped by the schema check
and checked for apiVersion/kind/metadata.name and for what they point at. On top of the schema, the
tests enforce the deployment rules: non-root, read-only root filesystem, no privilege escalation,
dropped capabilities, seccomp, requests and limits, readiness probes, native gRPC probes for the gRPC
services, writable emptyDirs for /tmp and the state dir, and every container on the image of its role
(the gateway image for gateway, worker and sink; each gRPC service's model image, `gpu` tag where the
Deployment gets a GPU).

Skips (with the reason) when kubectl is not on PATH or kubernetes_validate is not importable.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

if shutil.which("kubectl") is None:
    pytest.skip("kubectl is not on PATH: cannot render the kustomize overlays", allow_module_level=True)

try:
    import kubernetes_validate
    import yaml
except ImportError as error:  # not installed, or installed with a missing dependency
    pytest.skip(
        f"kubernetes-validate is not importable ({error}); pip install kubernetes-validate",
        allow_module_level=True,
    )

Doc = dict[str, Any]

K8S_VERSION = "1.30.0"
REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / "deploy" / "k8s"
OVERLAYS_DIR = K8S_DIR / "overlays"
OVERLAYS = sorted(p.name for p in OVERLAYS_DIR.iterdir() if (p / "kustomization.yaml").is_file())

# Custom resources that kubernetes-validate has no schema for, and that the manifests may use.
KNOWN_CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}
GRPC_PORTS = {"rewriter": 50051, "retriever": 50052, "judge": 50053}
STATE_DIR = "/var/lib/tailsynth"
MODEL_LOAD_BUDGET_S = 120  # model load takes up to ~2 minutes on CPU


@cache
def _render(overlay: str) -> tuple[Doc, ...]:
    proc = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAYS_DIR / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {overlay} failed:\n{proc.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(overlay: str) -> list[Doc]:
    return list(_render(overlay))


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def pod_spec(deployment: Doc) -> Doc:
    spec: Doc = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: Doc, *, init: bool = True) -> list[Doc]:
    spec = pod_spec(deployment)
    found: list[Doc] = list(spec.get("containers", []))
    if init:
        found += spec.get("initContainers", [])
    return found


def main_container(deployment: Doc) -> Doc:
    name = deployment["metadata"]["name"]
    for container in containers(deployment, init=False):
        if container["name"] == name:
            return container
    raise AssertionError(f"deployment {name} has no container named {name}")


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def configmap_data(docs: list[Doc], container: Doc) -> dict[str, str]:
    maps = by_kind(docs, "ConfigMap")
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            data.update(maps[ref["name"]].get("data", {}))
    return data


def role_extra(command: list[str]) -> str:
    """The extra (and so the image, tailsynth-<extra>) that a container command needs."""
    from services.cli.main import NEEDS
    from services.core.optional import ROLES

    if command[:2] == ["python", "-m"]:
        return ROLES[command[2].removeprefix("services.")]
    assert command[0] == "synth", f"unknown container command {command}"
    return NEEDS[command[1]][1]


def renamed_images(overlay: str) -> dict[str, str]:
    """newName -> name of the overlay's `images:` (the registry names it gives the base's images)."""
    kustomization = yaml.safe_load((OVERLAYS_DIR / overlay / "kustomization.yaml").read_text())
    return {i["newName"]: i["name"] for i in kustomization.get("images", []) if "newName" in i}


def is_custom_resource(doc: Doc) -> bool:
    return (doc.get("apiVersion"), doc.get("kind")) in KNOWN_CUSTOM_RESOURCES


def test_overlays_present() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS), f"expected dev and prod overlays, found {OVERLAYS}"


def test_validator_is_strict() -> None:
    """Guard against a validator that accepts anything: an unknown field must be rejected."""
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"a": "b"},
        "notAField": True,
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}},
            K8S_VERSION,
            strict=True,
        )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_schema_valid(overlay: str) -> None:
    docs = render(overlay)
    assert docs, f"{overlay} rendered no documents"
    errors: list[str] = []
    for doc in docs:
        for key in ("apiVersion", "kind"):
            assert doc.get(key), f"{overlay}: document without {key}: {doc}"
        name = (doc.get("metadata") or {}).get("name")
        assert name, f"{overlay}: {doc['kind']} without metadata.name"
        if is_custom_resource(doc):
            continue  # no schema in kubernetes-validate; checked in test_custom_resources
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{doc['kind']}/{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(
                f"{doc['kind']}/{name}: unknown kind (not a known custom resource): {error.message}"
            )
    assert not errors, f"{overlay} fails Kubernetes {K8S_VERSION} strict validation:\n" + "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    auths = by_kind(docs, "TriggerAuthentication")
    for doc in filter(is_custom_resource, docs):
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        if doc["kind"] == "ScaledObject":
            target = doc["spec"]["scaleTargetRef"]["name"]
            assert target in deployments, f"ScaledObject {doc['metadata']['name']} targets unknown {target}"
            assert doc["spec"]["triggers"], "ScaledObject without triggers"
            for trigger in doc["spec"]["triggers"]:
                ref = trigger.get("authenticationRef")
                if ref:
                    assert ref["name"] in auths, f"unknown TriggerAuthentication {ref['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str) -> None:
    """ConfigMaps, PVCs and ServiceAccounts that pods use exist in the render (hashed names included)."""
    docs = render(overlay)
    maps, pvcs = by_kind(docs, "ConfigMap"), by_kind(docs, "PersistentVolumeClaim")
    accounts = by_kind(docs, "ServiceAccount")
    for name, deployment in by_kind(docs, "Deployment").items():
        spec = pod_spec(deployment)
        assert spec.get("serviceAccountName") in accounts, f"{name}: missing ServiceAccount"
        for container in containers(deployment):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in maps, f"{name}: unknown ConfigMap"
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in pvcs, f"{name}: unknown PVC"
        mounts = {m["name"] for c in containers(deployment) for m in c.get("volumeMounts", [])}
        assert mounts <= {v["name"] for v in spec.get("volumes", [])}, f"{name}: mount of an undefined volume"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_hardened(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    assert deployments, f"{overlay} has no Deployments"
    problems: list[str] = []
    for name, deployment in deployments.items():
        spec = pod_spec(deployment)
        pod_sc = spec.get("securityContext", {})
        if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        for container in containers(deployment):
            where = f"{name}/{container['name']}"
            sc = container.get("securityContext", {})
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot", False)):
                problems.append(f"{where}: runAsNonRoot is not true")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
                problems.append(f"{where}: capabilities do not drop ALL")
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(resources.get(section, {}))
                if missing:
                    problems.append(f"{where}: resources.{section} lacks {sorted(missing)}")
        for container in containers(deployment, init=False):
            if not container.get("readinessProbe"):
                problems.append(f"{name}/{container['name']}: no readinessProbe")
    assert not problems, f"{overlay}:\n" + "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_the_image_of_its_role(overlay: str) -> None:
    renamed = renamed_images(overlay)
    seen: set[str] = set()
    for name, deployment in by_kind(render(overlay), "Deployment").items():
        gpu = "nvidia.com/gpu" in main_container(deployment)["resources"]["limits"]
        for container in containers(deployment):
            if name == "redis":
                continue
            repository, _, tag = container["image"].rpartition(":")
            image = renamed.get(repository, repository)
            command = container.get("command", []) + container["args"]
            expected = f"tailsynth-{role_extra(command)}"
            assert image == expected, (
                f"{overlay}: {name}/{container['name']} ({command}) runs {image}, not {expected}"
            )
            assert tag == ("gpu" if gpu else "cpu"), f"{overlay}: {name}/{container['name']} has tag {tag}"
            seen.add(image)
    assert seen == {"tailsynth-gateway", "tailsynth-rewriter", "tailsynth-retriever", "tailsynth-judge"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tailsynth_containers_have_writable_tmp_and_state(overlay: str) -> None:
    docs = render(overlay)
    for name, deployment in by_kind(docs, "Deployment").items():
        volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
        for container in containers(deployment):
            if "tailsynth" not in container["image"]:
                continue
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            for path in ("/tmp", STATE_DIR):
                assert path in mounts, f"{name}/{container['name']}: nothing writable mounted at {path}"
                assert "emptyDir" in volumes[mounts[path]], f"{name}: {path} is not an emptyDir"
            assert configmap_data(docs, container).get("TAILSYNTH_STATE_DIR") == STATE_DIR


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grpc_services_use_native_grpc_probes(overlay: str) -> None:
    deployments = by_kind(render(overlay), "Deployment")
    services = by_kind(render(overlay), "Service")
    for name, port in GRPC_PORTS.items():
        assert name in deployments, f"{overlay}: no {name} Deployment"
        container = main_container(deployments[name])
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = container.get(kind)
            assert probe, f"{name}: no {kind}"
            assert probe.get("grpc", {}).get("port") == port, f"{name}: {kind} is not a grpc probe on {port}"
            assert not {"httpGet", "tcpSocket", "exec"} & set(probe), f"{name}: {kind} mixes handlers"
        startup = container["startupProbe"]
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        assert budget >= MODEL_LOAD_BUDGET_S, f"{name}: startupProbe allows only {budget}s for model load"
        env = env_of(container)
        assert env[f"TAILSYNTH_{name.upper()}_BIND"]["value"] == f"0.0.0.0:{port}"
        assert env[f"TAILSYNTH_{name.upper()}_METRICS_PORT"]["value"] == "9090"
        annotations = deployments[name]["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", f"{name}: not scraped"
        assert annotations.get("prometheus.io/port") == "9090"
        assert [p["port"] for p in services[name]["spec"]["ports"]] == [port]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway(overlay: str) -> None:
    docs = render(overlay)
    gateway = main_container(by_kind(docs, "Deployment")["gateway"])
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = env_of(gateway)
    assert env["TAILSYNTH_GATEWAY_HOST"]["value"] == "0.0.0.0"
    assert env["TAILSYNTH_GATEWAY_PORT"]["value"] == "8000"
    config = configmap_data(docs, gateway)
    for service, port in GRPC_PORTS.items():
        assert config[f"TAILSYNTH_PIPELINE_{service.upper()}_TARGET"] == f"{service}:{port}"
    assert [p["port"] for p in by_kind(docs, "Service")["gateway"]["spec"]["ports"]] == [8000]
    annotations = by_kind(docs, "Deployment")["gateway"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "8000"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_retriever_builds_index_in_shared_state(overlay: str) -> None:
    retriever = by_kind(render(overlay), "Deployment")["retriever"]
    inits = pod_spec(retriever).get("initContainers", [])
    assert len(inits) == 1, "retriever needs exactly one index-building init container"
    command = inits[0].get("command", []) + inits[0].get("args", [])
    assert command == ["synth", "index", "build", "--catalog", "/app/data/demo/catalog.csv"]
    init_state = {m["name"] for m in inits[0]["volumeMounts"] if m["mountPath"] == STATE_DIR}
    main_state = {m["name"] for m in main_container(retriever)["volumeMounts"] if m["mountPath"] == STATE_DIR}
    assert init_state and init_state == main_state, "init container and retriever must share the state volume"


def test_dev_overlay() -> None:
    docs = render("dev")
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"rewriter", "retriever", "judge", "gateway", "sink", "worker", "redis"}
    assert all(d["spec"].get("replicas") == 1 for d in deployments.values())
    assert "redis" in by_kind(docs, "Service")
    judge_config = configmap_data(docs, main_container(deployments["judge"]))
    assert judge_config["TAILSYNTH_JUDGE_CACHE_URL"] == judge_config["TAILSYNTH_REDIS_URL"], "judge cache"
    for name in GRPC_PORTS:
        assert "nvidia.com/gpu" not in main_container(deployments[name])["resources"]["limits"]
    assert not [d for d in docs if is_custom_resource(d)], "dev must not need KEDA"
    gateway_env = {e["name"]: e for e in main_container(deployments["gateway"])["env"]}
    assert gateway_env["TAILSYNTH_GATEWAY_DEBUG_PAGE"]["value"] == "true"
    assert gateway_env["TAILSYNTH_GATEWAY_API_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_prod_overlay() -> None:
    docs = render("prod")
    deployments = by_kind(docs, "Deployment")
    assert "redis" not in deployments and "redis" not in by_kind(docs, "Service"), "in-cluster redis left"
    assert deployments["gateway"]["spec"]["replicas"] == 2
    assert "replicas" not in deployments["worker"]["spec"], "KEDA owns the workers' replicas"
    assert deployments["sink"]["spec"]["replicas"] == 1, "one sink writes the store"
    gateway_env = {e["name"]: e for e in main_container(deployments["gateway"])["env"]}
    assert "TAILSYNTH_GATEWAY_DEBUG_PAGE" not in gateway_env, "no debugging page in production"
    keys = gateway_env["TAILSYNTH_GATEWAY_API_KEYS"]["valueFrom"]["secretKeyRef"]
    assert keys == {"name": "tailsynth-api-keys", "key": "entries", "optional": False}, (
        "prod requires API keys"
    )

    # GPU: one GPU per model service, GPU pool scheduling, the gpu image and cuda devices.
    for name in GRPC_PORTS:
        container = main_container(deployments[name])
        assert str(container["resources"]["limits"].get("nvidia.com/gpu")) == "1", f"{name}: no GPU limit"
        assert container["image"].endswith(f"/{name}:gpu"), f"{name}: not its gpu image"
        spec = pod_spec(deployments[name])
        assert spec.get("nodeSelector"), f"{name}: no GPU node selector"
        assert any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations", [])), name
        assert configmap_data(docs, container)[f"TAILSYNTH_{name.upper()}_DEVICE"] == "cuda"
    assert (
        configmap_data(docs, main_container(deployments["rewriter"]))["TAILSYNTH_REWRITER_ENGINES"]
        == "vllm,catalog"
    )

    # Managed Redis: the URL comes from a Secret for every Redis client, never from the ConfigMap.
    for name in ("gateway", "sink", "worker"):
        container = main_container(deployments[name])
        ref = env_of(container)["TAILSYNTH_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] and ref["key"]
        assert "TAILSYNTH_REDIS_URL" not in configmap_data(docs, container)
    judge = main_container(deployments["judge"])
    assert env_of(judge)["TAILSYNTH_JUDGE_CACHE_URL"]["valueFrom"]["secretKeyRef"] == ref
    assert "TAILSYNTH_JUDGE_CACHE_URL" not in configmap_data(docs, judge)

    # KEDA scales the workers on the query queue's consumer-group lag.
    scaled = by_kind(docs, "ScaledObject")["worker"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    worker_config = configmap_data(docs, main_container(deployments["worker"]))
    assert worker_config["TAILSYNTH_QUEUE_STREAM_KEY"] == trigger["metadata"]["stream"]
    assert worker_config["TAILSYNTH_QUEUE_GROUP"] == trigger["metadata"]["consumerGroup"]
    assert int(trigger["metadata"]["lagCount"]) > 0
    assert scaled["spec"]["minReplicaCount"] >= 1, "lag is only measured while a worker reads"

    # Gateway availability.
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert pdbs["gateway"]["spec"] == {
        "minAvailable": 1,
        "selector": {"matchLabels": deployments["gateway"]["spec"]["selector"]["matchLabels"]},
    }
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert hpa["spec"]["minReplicas"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budgets_and_graceful_termination(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    pdbs = by_kind(docs, "PodDisruptionBudget")
    for name in ("gateway", "worker", *GRPC_PORTS):
        selector = pdbs[name]["spec"]["selector"]["matchLabels"]
        assert selector == deployments[name]["spec"]["selector"]["matchLabels"], name
    worker = main_container(deployments["worker"])
    grace = float(env_of(worker)["TAILSYNTH_QUEUE_GRACE_S"]["value"])
    assert pod_spec(deployments["worker"])["terminationGracePeriodSeconds"] > grace
    assert worker["args"] == ["synth", "worker"]
    assert main_container(deployments["sink"])["args"] == ["synth", "sink"]
