"""services.core.optional says what pyproject.toml's extras install, and the entry points name the extra."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from services.core import optional
from services.core.errors import ConfigError
from services.core.optional import EXTRAS, ROLES, Library, MissingExtra, require
from services.core.registry import Registry

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SELF = re.compile(r"^tailsynth\[(?P<extras>[^\]]+)\]$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
TOOLS = {"dev"}  # test and lint tools: nothing under services/ imports them


def pyproject_extras() -> dict[str, tuple[set[str], set[str]]]:
    """extra -> (distributions it lists, extras it includes), from pyproject.toml."""
    extras: dict[str, tuple[set[str], set[str]]] = {}
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        listed: set[str] = set()
        included: set[str] = set()
        for requirement in requirements:
            own = SELF.match(requirement)
            if own:
                included.update(name.strip() for name in own["extras"].split(","))
            else:
                match = NAME.match(requirement)
                assert match, f"cannot read the requirement {requirement!r} of extra {extra}"
                listed.add(match.group().lower())
        extras[extra] = (listed, included)
    return extras


def test_every_extra_of_pyproject_is_declared_here_with_the_same_contents() -> None:
    declared = {
        name: ({lib.distribution.lower() for lib in extra.libraries}, set(extra.includes))
        for name, extra in EXTRAS.items()
    }
    assert declared == {name: value for name, value in pyproject_extras().items() if name not in TOOLS}


def test_base_dependencies_hold_no_library_of_an_extra() -> None:
    base = {NAME.match(r).group().lower() for r in PYPROJECT["project"]["dependencies"]}  # type: ignore[union-attr]
    in_extras = {lib.distribution.lower() for extra in EXTRAS.values() for lib in extra.libraries}
    assert base == {
        "grpcio",
        "grpcio-health-checking",
        "grpcio-reflection",
        "protobuf",
        "pydantic",
        "pydantic-settings",
        "prometheus-client",
    }
    assert not base & in_extras


def test_each_pin_is_written_once_and_torch_is_pinned_exactly() -> None:
    seen: dict[str, str] = {}
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        for requirement in requirements:
            if SELF.match(requirement):
                continue
            name = NAME.match(requirement).group().lower()  # type: ignore[union-attr]
            assert name not in seen, f"{name} is in both {seen[name]} and {extra}"
            seen[name] = extra
    assert [r for r in PYPROJECT["project"]["optional-dependencies"]["torch"] if r.startswith("torch")] == [
        "torch==2.13.0"
    ]


def test_included_extras_resolve_without_cycles() -> None:
    def walk(name: str, path: tuple[str, ...]) -> None:
        assert name in EXTRAS, f"{' -> '.join(path)} includes unknown extra {name}"
        assert name not in path, f"cycle: {' -> '.join((*path, name))}"
        for included in EXTRAS[name].includes:
            walk(included, (*path, name))

    for name in EXTRAS:
        walk(name, ())


def test_the_gateway_extra_carries_no_model_library() -> None:
    modules = {lib.module for lib in optional.libraries("gateway")}
    assert modules == {"fastapi", "uvicorn", "pyarrow", "httpx", "redis"}
    heavy = {"torch", "transformers", "faiss", "onnx", "onnxruntime", "matplotlib", "numpy"}
    assert not modules & heavy
    assert heavy - {"matplotlib"} <= {lib.module for lib in optional.libraries("retriever", "judge")}


def test_every_role_and_registry_hint_names_an_extra_that_exists() -> None:
    from services.core.encoder_backend import BACKENDS
    from services.judge.engine import ENGINES as JUDGE_ENGINES
    from services.rewriter.engine import ENGINES as REWRITER_ENGINES

    assert set(ROLES.values()) <= set(EXTRAS)
    for registry in (BACKENDS, JUDGE_ENGINES, REWRITER_ENGINES):
        assert set(registry.extras.values()) <= set(EXTRAS), registry.kind
        assert set(registry.extras) <= set(registry.entries), registry.kind


def test_a_missing_library_names_the_extra_that_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        EXTRAS, "test-extra", optional.Extra((Library("not-a-package", "tailsynth_no_such_module"),))
    )
    with pytest.raises(MissingExtra) as caught:
        require("test-extra", what="synth test", install="gateway")
    assert (
        str(caught.value)
        == "synth test needs not-a-package, not installed here: pip install 'tailsynth[gateway]'"
    )
    assert isinstance(caught.value, ConfigError)
    require("gateway", what="the gateway")  # installed in the test environment: no error


def test_a_registry_entry_whose_module_fails_to_import_names_its_extra() -> None:
    registry: Registry[object] = Registry(
        "test engine", {"x": "tailsynth_no_such_module:Engine"}, extras={"x": "rewriter"}
    )
    with pytest.raises(
        ConfigError,
        match=r"test engine 'x' needs tailsynth_no_such_module; install it with: pip install 'tailsynth\[rewriter\]'",
    ):
        registry.get("x")


def run_hiding(modules: set[str], code: str) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter where the modules cannot be found (as if not installed)."""
    script = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {sorted(modules)!r}: raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
    ) + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.mark.parametrize(
    ("package", "hidden", "line"),
    [
        ("retriever", "faiss", "needs faiss-cpu, not installed here: pip install 'tailsynth[retriever]'"),
        ("judge", "onnxruntime", "needs onnxruntime, not installed here: pip install 'tailsynth[judge]'"),
        ("rewriter", "gguf", "needs gguf, not installed here: pip install 'tailsynth[rewriter]'"),
        ("store", "pyarrow", "needs pyarrow, not installed here: pip install 'tailsynth[gateway]'"),
    ],
)
def test_an_entry_point_without_its_extra_exits_2_with_one_line(package: str, hidden: str, line: str) -> None:
    done = run_hiding({hidden}, f"import runpy; runpy.run_module('services.{package}', run_name='__main__')")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"python -m services.{package} {line}"]


def test_synth_commands_without_their_extra_exit_2_naming_it() -> None:
    code = (
        "from services.cli.main import main\n"
        "codes = [main(['train', 'retriever']), main(['eval', 'judge', '--help']), main(['index', 'build'])]\n"
        "print(codes)\n"
        "main(['--help'])\n"
    )
    done = run_hiding({"numpy", "matplotlib", "faiss"}, code)
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "synth: synth train needs faiss-cpu, matplotlib, numpy, not installed here: pip install 'tailsynth[lab]'",
        "synth: synth eval needs faiss-cpu, matplotlib, numpy, not installed here: pip install 'tailsynth[lab]'",
        "synth: synth index needs faiss-cpu, numpy, not installed here: pip install 'tailsynth[retriever]'",
    ], done.stderr
    assert done.stdout.startswith("[2, 2, 2]\n")
    # The offline commands are still listed, with the extra they need.
    assert "evaluation commands (needs the lab extra)" in " ".join(done.stdout.split())
    assert done.returncode == 0
