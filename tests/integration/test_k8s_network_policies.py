"""components/network-policies on the dev and prod overlays (and with components/retriever-shards):
renders, validates strictly (Kubernetes 1.30.0), denies by default and allows exactly the flows the
system uses.

The flows are checked with a small evaluator of NetworkPolicy semantics (a flow passes when the source's
egress and the destination's ingress both allow it; a pod no policy selects for a direction is open in
that direction) over the pods the Deployments render.

Skips (with the reason) when kubectl is not on PATH or kubernetes_validate is not importable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
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
# The render: (namespace of its overlay, overlay, other components).
RENDERS = {
    "dev": ("tailsynth-dev", "dev", ()),
    "prod": ("tailsynth", "prod", ()),
    "dev+shards": ("tailsynth-dev", "dev", ("retriever-shards",)),
}


@cache
def render(name: str, tmp: Path) -> tuple[Doc, ...]:
    namespace, overlay, extra = RENDERS[name]
    here = tmp / name.replace("+", "-")
    here.mkdir()
    k8s = os.path.relpath(K8S_DIR, here)
    components = "".join(f"  - {k8s}/components/{c}\n" for c in (*extra, "network-policies"))
    (here / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {namespace}\nresources:\n  - {k8s}/overlays/{overlay}\ncomponents:\n{components}"
    )
    proc = subprocess.run(
        ["kubectl", "kustomize", str(here)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("overlays")


@dataclass(frozen=True)
class Endpoint:
    """A pod (labels, namespace), or something outside the cluster (labels None)."""

    labels: tuple[tuple[str, str], ...] | None
    namespace: str = ""

    def __str__(self) -> str:
        if self.labels is None:
            return "outside the cluster"
        labels = dict(self.labels)
        return f"{self.namespace}/{labels.get('app') or labels.get('k8s-app')}"


OUTSIDE = Endpoint(None)
DNS = Endpoint((("k8s-app", "kube-dns"),), "kube-system")
PROMETHEUS = Endpoint((("app", "prometheus"),), "monitoring")


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def peer_matches(peer: Doc, endpoint: Endpoint, namespace: str) -> bool:
    if endpoint.labels is None:
        return "ipBlock" in peer  # only an ipBlock names something outside the cluster
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": endpoint.namespace}
        if not selects(peer["namespaceSelector"], ns_labels):
            return False
    elif endpoint.namespace != namespace:
        return False
    return selects(peer.get("podSelector") or {}, dict(endpoint.labels))


def port_matches(rule: Doc, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def direction_allows(
    policies: list[Doc], pod: Endpoint, direction: str, other: Endpoint, port: int, protocol: str
) -> bool:
    if pod.labels is None:
        return True  # outside the cluster: not ours to restrict
    labels = dict(pod.labels)
    chosen = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction.capitalize() in p["spec"]["policyTypes"]
        and selects(p["spec"]["podSelector"], labels)
    ]
    if not chosen:
        return True
    key = "egress" if direction == "egress" else "ingress"
    peers_key = "to" if direction == "egress" else "from"
    return any(
        port_matches(rule, port, protocol)
        and (
            peers_key not in rule or any(peer_matches(peer, other, pod.namespace) for peer in rule[peers_key])
        )
        for policy in chosen
        for rule in policy["spec"].get(key) or []
    )


def allowed(policies: list[Doc], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    return direction_allows(policies, src, "egress", dst, port, protocol) and direction_allows(
        policies, dst, "ingress", src, port, protocol
    )


def pods(docs: tuple[Doc, ...]) -> dict[str, Endpoint]:
    found = {}
    for doc in docs:
        if doc["kind"] == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            found[doc["metadata"]["name"]] = Endpoint(
                tuple(sorted(labels.items())), doc["metadata"]["namespace"]
            )
    return found


def policies_of(docs: tuple[Doc, ...]) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("name", RENDERS)
def test_renders_and_validates_strictly(name: str, tmp: Path) -> None:
    docs = render(name, tmp)
    errors = []
    for doc in docs:
        if doc["kind"] == "ScaledObject" or doc["kind"] == "TriggerAuthentication":
            continue  # KEDA: no schema (see test_k8s_manifests.py)
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {error}")
    assert not errors, "\n".join(errors)
    namespace = RENDERS[name][0]
    assert {p["metadata"]["namespace"] for p in policies_of(docs)} == {namespace}


@pytest.mark.parametrize("name", RENDERS)
def test_everything_is_denied_by_default(name: str, tmp: Path) -> None:
    docs = render(name, tmp)
    deny = [p for p in policies_of(docs) if p["metadata"]["name"] == "default-deny"]
    assert len(deny) == 1
    spec = deny[0]["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, "default-deny allows something"


def test_every_policy_selects_some_pod(tmp: Path) -> None:
    """A label typo would make a policy select nothing, silently allowing nothing (or everything)."""
    for name in RENDERS:
        docs = render(name, tmp)
        labels = [dict(p.labels or ()) for p in pods(docs).values()]
        for policy in policies_of(docs):
            selector = policy["spec"]["podSelector"]
            if name == "dev" or policy["metadata"]["name"] != "redis":  # prod has no in-cluster Redis
                assert any(selects(selector, pod) for pod in labels), f"{name}: {policy['metadata']['name']}"


@pytest.mark.parametrize("name", RENDERS)
def test_the_flows_the_system_uses_are_allowed(name: str, tmp: Path) -> None:
    docs = render(name, tmp)
    policies, pod = policies_of(docs), pods(docs)
    retrievers = [r for r in ("retriever", "retriever-1") if r in pod]
    redis = pod.get("redis", OUTSIDE)  # prod: a managed Redis outside the cluster
    flows = [(OUTSIDE, pod["gateway"], 8000), (PROMETHEUS, pod["gateway"], 8000)]
    for caller in ("gateway", "worker"):
        flows += [(pod[caller], pod["rewriter"], 50051), (pod[caller], pod["judge"], 50053)]
        flows += [(pod[caller], pod[r], 50052) for r in retrievers]
    flows += [(pod[client], redis, 6379) for client in ("gateway", "worker", "sink", "judge")]
    if redis is OUTSIDE:
        flows += [(pod["gateway"], OUTSIDE, 6380)]  # a TLS port of a managed Redis
    flows += [(PROMETHEUS, pod[p], 9090) for p in ("rewriter", "judge", "worker", *retrievers)]
    blocked = [f"{s} -> {d}:{port}" for s, d, port in flows if not allowed(policies, s, d, port)]
    assert not blocked, "\n".join(blocked)
    for endpoint in pod.values():
        assert allowed(policies, endpoint, DNS, 53, "UDP") and allowed(policies, endpoint, DNS, 53, "TCP")


@pytest.mark.parametrize("name", RENDERS)
def test_nothing_else_is_allowed(name: str, tmp: Path) -> None:
    docs = render(name, tmp)
    policies, pod = policies_of(docs), pods(docs)
    denied = [
        (pod["sink"], pod["rewriter"], 50051),  # the sink calls no service
        (pod["retriever"], pod["judge"], 50053),  # services do not call each other
        (pod["rewriter"], pod.get("redis", OUTSIDE), 6379),  # nor Redis
        (pod["rewriter"], OUTSIDE, 443),  # no model hub, no internet
        (pod["gateway"], OUTSIDE, 443),
        (OUTSIDE, pod["rewriter"], 50051),  # the gRPC services are internal
        (OUTSIDE, pod["judge"], 9090),
        (OUTSIDE, pod["sink"], 9090),
        (PROMETHEUS, pod["sink"], 8000),
        (pod["gateway"], pod["rewriter"], 9090),
        (pod["worker"], pod["gateway"], 8000),
        (pod["gateway"], DNS, 80),
    ]
    if "redis" in pod:
        denied += [(OUTSIDE, pod["redis"], 6379), (pod["retriever"], pod["redis"], 6379)]
    leaks = [f"{s} -> {d}:{port}" for s, d, port in denied if allowed(policies, s, d, port)]
    assert not leaks, "\n".join(leaks)
