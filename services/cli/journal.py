"""The journal of `synth synthesize`: one JSON line per finished query (or product, with
--from-catalog), read back to resume a run.

A query counts as done when its line says status 200 under the pipeline version the gateway serves
now; a query done under an older version, or one that failed, is synthesized again. Products alike.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO, TypeVar

from pydantic import BaseModel, Field, ValidationError

from services.pipeline.models import QueryItem

T = TypeVar("T")
E = TypeVar("E", bound="Finished")

# What a run is asked to do and the gateway does the same way each time: (query, num_rewrites, top_k)
# for a logged query, ("product", product id, styles, num_queries, top_k, num_rewrites) for a product.
Key = tuple[str | int, ...]


class Finished(BaseModel):
    """What every journal line says: the version it ran under, the answer and the pairs it stored."""

    pipeline_version: str
    status: int = Field(description="200: done; else what the gateway answered (0: no answer).")
    accepted: int = 0
    new: int = 0
    duplicates: int = 0
    spooled: int = 0
    error: str | None = None
    finished_at: float = Field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def done(self) -> bool:
        """Nothing left to do: a re-run skips it."""
        return self.ok

    def key(self) -> Key:
        raise NotImplementedError


class JournalEntry(Finished):
    """A logged query (synth synthesize --queries)."""

    query: str
    num_rewrites: int
    top_k: int
    origin: str = ""
    cached: bool = False

    def key(self) -> Key:
        return key_of(self)


class ProductEntry(Finished):
    """A product (synth synthesize --from-catalog): what its queries became."""

    product_id: str
    styles: list[str]
    num_queries: int
    top_k: int
    num_rewrites: int
    generated: int = 0
    kept: int = 0
    by_retrieval: int = 0
    dropped: dict[str, int] = Field(default_factory=dict, description="Dropped queries by reason.")
    generated_by_style: dict[str, int] = Field(default_factory=dict)
    kept_by_style: dict[str, int] = Field(default_factory=dict)
    failures: list[str] = Field(
        default_factory=list, description="style: engine: error, for each style a rewrite engine failed"
    )

    @property
    def done(self) -> bool:
        return self.ok and not self.failures

    def key(self) -> Key:
        return (
            "product",
            self.product_id,
            ",".join(self.styles),
            self.num_queries,
            self.top_k,
            self.num_rewrites,
        )


def key_of(item: QueryItem | JournalEntry) -> Key:
    key: Key = (item.query, item.num_rewrites, item.top_k)
    return key + (item.origin,) if item.origin else key


def default_journal(state_dir: Path, source: Path, kind: str = "") -> Path:
    """<state dir>/synthesize/<file stem>[-<kind>]-<hash of the file's absolute path>.jsonl"""
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]
    return state_dir / "synthesize" / f"{source.stem}{f'-{kind}' if kind else ''}-{digest}.jsonl"


def parse_journal(lines: Iterable[str], model: type[E] = JournalEntry) -> list[E]:  # type: ignore[assignment]
    """Every readable line; a line cut short by a crash (or otherwise unreadable) is ignored."""
    entries: list[E] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            entries.append(model.model_validate_json(line))
        except ValidationError:
            continue
    return entries


def read_journal(path: Path, model: type[E] = JournalEntry) -> list[E]:  # type: ignore[assignment]
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            return parse_journal(lines, model)
    except FileNotFoundError:
        return []


def done_under(entries: Iterable[Finished], version: str) -> set[Key]:
    return {e.key() for e in entries if e.done and e.pipeline_version == version}


def plan(
    items: Iterable[T],
    done: set[Key],
    key: Callable[[T], Key] = key_of,  # type: ignore[assignment]
) -> tuple[list[T], int]:
    """The items still to do, in file order and each once, and how many were skipped (already done
    under this version, or a repeat of an earlier line)."""
    todo: list[T] = []
    seen = set(done)
    skipped = 0
    for item in items:
        if key(item) in seen:
            skipped += 1
        else:
            seen.add(key(item))
            todo.append(item)
    return todo, skipped


def open_journal(path: Path) -> TextIO:
    """Open for appending; a last line left without its newline by a crash is ended first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    if handle.tell() > 0:
        handle.seek(handle.tell() - 1)
        if handle.read(1) != "\n":
            handle.write("\n")
    return handle


def append(handle: TextIO, entry: Finished) -> None:
    handle.write(entry.model_dump_json() + "\n")
    handle.flush()
