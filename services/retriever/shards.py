"""Catalog sharding: which products a retriever serves when one machine cannot hold the whole catalog.

A shard is written "i/N" (shard i of N, 0 <= i < N); "0/1" is the whole catalog. A product belongs
to the shard given by the first 8 bytes of the SHA-1 of its id (big-endian), modulo N: stable across
processes, machines and Python versions (unlike hash(), which is salted per process), so every
builder agrees on the split without coordinating.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.catalog import Product
from services.core.errors import ConfigError

WHOLE = "0/1"
MANIFEST_KEY = "shard"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, product_id: str) -> bool:
        return shard_of(product_id, self.count) == self.index


def parse_shard(value: str) -> Shard:
    """'i/N' -> Shard; ConfigError naming the problem otherwise."""
    index, sep, count = value.strip().partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ConfigError(f"shard must look like i/N (e.g. 0/2), got {value!r}")
    shard = Shard(int(index), int(count))
    if shard.count < 1:
        raise ConfigError(f"shard {value!r}: the number of shards must be at least 1")
    if shard.index >= shard.count:
        raise ConfigError(f"shard {value!r}: the index must be between 0 and {shard.count - 1}")
    return shard


def shard_of(product_id: str, count: int) -> int:
    digest = hashlib.sha1(product_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % count


def select(products: Sequence[Product], shard: Shard) -> list[Product]:
    """The products of this shard, in catalog order; ConfigError when it holds none."""
    mine = [p for p in products if shard.holds(p.id)]
    if not mine:
        raise ConfigError(f"shard {shard} holds none of the catalog's {len(products)} products")
    return mine


def all_shards(count: int) -> list[str]:
    return [str(Shard(i, count)) for i in range(count)]


def record(manifest: dict[str, Any], shard: Shard) -> None:
    manifest[MANIFEST_KEY] = str(shard)


def built_for(manifest: dict[str, Any]) -> str:
    """The shard an index manifest was built for (one without the key holds the whole catalog)."""
    return str(manifest.get(MANIFEST_KEY, WHOLE))


def check_manifest(manifest: dict[str, Any], shard: Shard, where: Path | str) -> None:
    """Refuse an index built for another shard."""
    built = built_for(manifest)
    if built != str(shard):
        raise ConfigError(
            f"index in {where} holds shard {built} of the catalog but this retriever serves shard "
            f"{shard} (TAILSYNTH_RETRIEVER_SHARD); rebuild it with TAILSYNTH_RETRIEVER_SHARD={shard} "
            "synth index build --catalog FILE"
        )
