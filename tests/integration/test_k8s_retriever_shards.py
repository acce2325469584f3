"""components/retriever-shards on top of the dev overlay: renders, validates strictly (Kubernetes 1.30.0)
and runs two retrievers, shard 0/2 and 1/2, that the pipeline's target list names in shard order.

retriever-1 must be the base retriever but for its name, labels and shard, so the hardening and probe
rules test_k8s_manifests.py enforces on the base retriever hold for it too.

Skips (with the reason) when kubectl is not on PATH or kubernetes_validate is not importable.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

if shutil.which("kubectl") is None:
    pytest.skip("kubectl is not on PATH: cannot render the kustomize component", allow_module_level=True)

try:
    import kubernetes_validate
    import yaml
except ImportError as error:
    pytest.skip(
        f"kubernetes-validate is not importable ({error}); pip install kubernetes-validate",
        allow_module_level=True,
    )

Doc = dict[str, Any]

K8S_VERSION = "1.30.0"
K8S_DIR = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SHARD = "TAILSYNTH_RETRIEVER_SHARD"


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    # kustomize wants relative paths; the namespace is the dev overlay's, as if it listed the component.
    here = tmp_path_factory.mktemp("overlay")
    k8s = os.path.relpath(K8S_DIR, here)
    (here / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: tailsynth-dev\n"
        f"resources:\n  - {k8s}/overlays/dev\ncomponents:\n  - {k8s}/components/retriever-shards\n"
    )
    proc = subprocess.run(
        ["kubectl", "kustomize", str(here)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env(container: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_renders_and_validates_strictly(docs: list[Doc]) -> None:
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {error}")
    assert not errors, "\n".join(errors)
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"tailsynth-dev"}


def test_each_retriever_builds_and_serves_its_shard(docs: list[Doc]) -> None:
    deployments = by_kind(docs, "Deployment")
    for shard, name in enumerate(("retriever", "retriever-1")):
        spec = deployments[name]["spec"]["template"]["spec"]
        (init,) = spec["initContainers"]
        (server,) = spec["containers"]
        assert env(init)[SHARD] == env(server)[SHARD] == f"{shard}/2", name
        assert init["args"] == ["synth", "index", "build", "--catalog", "/app/data/demo/catalog.csv"]
    maps = by_kind(docs, "ConfigMap")
    (config,) = maps.values()
    assert SHARD not in config["data"], "the shard is per Deployment, never in the shared ConfigMap"
    targets = config["data"]["TAILSYNTH_PIPELINE_RETRIEVER_TARGET"].split(",")
    assert targets == ["retriever:50052", "retriever-1:50052"]

    services = by_kind(docs, "Service")
    for target, deployment in zip(targets, ("retriever", "retriever-1"), strict=True):
        host, _, port = target.partition(":")
        service = services[host]["spec"]
        assert [p["port"] for p in service["ports"]] == [int(port)]
        pod_labels = deployments[deployment]["spec"]["template"]["metadata"]["labels"]
        assert service["selector"].items() <= pod_labels.items(), f"{host} does not select {deployment}"
        selectors = {name: s["spec"]["selector"] for name, s in services.items() if name != host}
        assert not any(sel.items() <= pod_labels.items() for sel in selectors.values()), deployment
    pdb = by_kind(docs, "PodDisruptionBudget")["retriever-1"]["spec"]["selector"]["matchLabels"]
    assert pdb == deployments["retriever-1"]["spec"]["selector"]["matchLabels"]


def test_the_second_shard_is_the_base_retriever_but_for_name_and_shard(docs: list[Doc]) -> None:
    deployments = by_kind(docs, "Deployment")

    def normalised(name: str) -> Doc:
        doc = copy.deepcopy(deployments[name])
        doc["metadata"]["name"] = "X"
        doc["metadata"]["labels"]["app"] = "X"
        doc["spec"]["selector"]["matchLabels"]["app"] = "X"
        template = doc["spec"]["template"]
        template["metadata"]["labels"]["app"] = "X"
        template["spec"]["containers"][0]["name"] = "X"
        for container in template["spec"]["containers"] + template["spec"]["initContainers"]:
            container["env"] = sorted(
                (e for e in container["env"] if e["name"] != SHARD), key=lambda e: e["name"]
            )
        return doc

    assert normalised("retriever-1") == normalised("retriever")
