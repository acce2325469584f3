"""Versioned prompt files: TOML tables in a service's prompts/ folder, named by their file stem and versioned
by a hash of their bytes, so any edit gives a new version (and so new cache keys).

The rewriter (chat turns) and the judge (a completion template with graded labels) build their own
template types from the parsed table and check them; finding, reading, hashing and the errors are here.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from services.core.errors import ConfigError

T = TypeVar("T")


def load_prompt_file(directory: Path, name: str, kind: str, build: Callable[[dict[str, Any], str], T]) -> T:
    """build(table, version) for directory/<name>.toml, version being `name@<8 hex of its sha256>`.

    An unknown name lists the available ones; a file that does not parse, or that build() refuses with a
    KeyError, ValueError, IndexError or TypeError (a missing key, a bad placeholder), is a ConfigError
    naming the file: a bad prompt fails when the service loads, not per request.
    """
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml")))
        raise ConfigError(f"unknown {kind} {name!r}; available: {known}")
    raw = path.read_bytes()
    try:
        return build(tomllib.loads(raw.decode()), f"{name}@{hashlib.sha256(raw).hexdigest()[:8]}")
    except (KeyError, ValueError, IndexError, TypeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{kind} {path.name} is malformed: {error!r}") from None
