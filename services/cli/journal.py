"""The journal of `synth synthesize`: one JSON line per finished query, read back to resume a run.

A query counts as done when its line says status 200 under the pipeline version the gateway serves
now; a query done under an older version, or one that failed, is synthesized again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, Field, ValidationError

from services.pipeline.models import QueryItem

Key = tuple[str, int, int]  # (query, num_rewrites, top_k): what the gateway synthesizes and caches by


class JournalEntry(BaseModel):
    query: str
    num_rewrites: int
    top_k: int
    pipeline_version: str
    status: int = Field(description="200: done; else what the gateway answered (0: no answer).")
    accepted: int = 0
    new: int = 0
    duplicates: int = 0
    spooled: int = 0
    cached: bool = False
    error: str | None = None
    finished_at: float = Field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == 200


def key_of(item: QueryItem | JournalEntry) -> Key:
    return (item.query, item.num_rewrites, item.top_k)


def default_journal(state_dir: Path, queries: Path) -> Path:
    """<state dir>/synthesize/<file stem>-<hash of the file's absolute path>.jsonl"""
    digest = hashlib.sha256(str(queries.resolve()).encode()).hexdigest()[:12]
    return state_dir / "synthesize" / f"{queries.stem}-{digest}.jsonl"


def parse_journal(lines: Iterable[str]) -> list[JournalEntry]:
    """Every readable line; a line cut short by a crash (or otherwise unreadable) is ignored."""
    entries: list[JournalEntry] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            entries.append(JournalEntry.model_validate_json(line))
        except ValidationError:
            continue
    return entries


def read_journal(path: Path) -> list[JournalEntry]:
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            return parse_journal(lines)
    except FileNotFoundError:
        return []


def done_under(entries: Iterable[JournalEntry], version: str) -> set[Key]:
    return {key_of(e) for e in entries if e.ok and e.pipeline_version == version}


def plan(items: Iterable[QueryItem], done: set[Key]) -> tuple[list[QueryItem], int]:
    """The queries still to synthesize, in file order and each once, and how many were skipped
    (already done under this version, or a repeat of an earlier line)."""
    todo: list[QueryItem] = []
    seen = set(done)
    skipped = 0
    for item in items:
        if key_of(item) in seen:
            skipped += 1
        else:
            seen.add(key_of(item))
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


def append(handle: TextIO, entry: JournalEntry) -> None:
    handle.write(entry.model_dump_json() + "\n")
    handle.flush()
