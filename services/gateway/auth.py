"""API keys: only their SHA-256 digests are configured; a request names its key in a header.

Keys are long random tokens (`synth apikey new`), so an unsalted digest is enough: the digest
cannot be turned back into a usable key, and looking one up needs no secret comparison.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.core.errors import ConfigError

KEY_PREFIX = "tsk_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ApiKey:
    name: str
    per_minute: int | None  # None: the gateway's default rate limit


ANONYMOUS = ApiKey("anonymous", None)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def entry(name: str, key: str, per_minute: int | None = None) -> str:
    """The configuration line for a key: what goes into TAILSYNTH_GATEWAY_API_KEYS or the keys file."""
    return f"{name}:{digest(key)}" + (f":{per_minute}" if per_minute is not None else "")


def parse_entries(text: str, source: str) -> dict[str, ApiKey]:
    """Keys by digest from `name:sha256hex[:per_minute]` entries separated by commas or newlines."""
    keys: dict[str, ApiKey] = {}
    names: set[str] = set()
    raw_entries = [e.strip() for line in text.splitlines() for e in line.split(",")]
    for number, raw in enumerate((e for e in raw_entries if e and not e.startswith("#")), start=1):
        parts = raw.split(":")
        where = f"{source}, entry {number}"
        if len(parts) not in (2, 3):
            raise ConfigError(f"{where}: expected name:sha256hex[:per_minute], got {len(parts)} fields")
        name, hexdigest = parts[0], parts[1].lower()
        if not NAME_PATTERN.match(name):
            raise ConfigError(f"{where}: key name must be 1-64 letters, digits, '_', '.' or '-'")
        if not _DIGEST.match(hexdigest):
            raise ConfigError(f"{where} ({name}): the key must be given as its 64-hex-digit SHA-256 digest")
        per_minute = None
        if len(parts) == 3:
            if not parts[2].isdigit() or int(parts[2]) < 1:
                raise ConfigError(f"{where} ({name}): per_minute must be a positive integer")
            per_minute = int(parts[2])
        if name in names or hexdigest in keys:
            raise ConfigError(f"{where}: duplicate key or name {name!r}")
        names.add(name)
        keys[hexdigest] = ApiKey(name, per_minute)
    return keys


def load_keys(inline: str, path: Path | None) -> dict[str, ApiKey]:
    keys = parse_entries(inline, "TAILSYNTH_GATEWAY_API_KEYS")
    if path is not None:
        try:
            text = path.read_text()
        except OSError as error:
            raise ConfigError(f"cannot read the API keys file {path}: {error.strerror}") from None
        from_file = parse_entries(text, str(path))
        names = {k.name for k in keys.values()} & {k.name for k in from_file.values()}
        if names or set(keys) & set(from_file):
            raise ConfigError(f"API keys defined both inline and in {path}: {sorted(names) or 'same key'}")
        keys |= from_file
    return keys
