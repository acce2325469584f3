"""Accepted pairs that could not reach Redis wait here, on local disk, until they can.

Each spooled batch is one file, written durably (tmp, fsync, rename, fsync of the directory) before
the caller is answered, and removed only after every entry in it reached the stream. Replay goes
through the stream's append-once script, so a batch replayed twice (a crash between the append and
the unlink, or two processes sharing the spool) adds nothing twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path

from services.core.durable import fsync_dir, write_bytes

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, entries: list[dict[str, str]]) -> Path:
        """Write one batch durably and return its file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
        write_bytes(path, lines.encode())
        return path

    def batches(self) -> list[Path]:
        """Spooled batches, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.jsonl"))

    def oldest_age_s(self, batches: list[Path] | None = None) -> float | None:
        """Seconds since the oldest batch (of `batches`, default all) was spooled; None when there is none."""
        for path in self.batches() if batches is None else batches:
            try:
                return max(time.time() - path.stat().st_mtime, 0.0)
            except FileNotFoundError:  # replayed meanwhile
                continue
        return None

    def read(self, path: Path) -> list[dict[str, str]]:
        """The batch's entries; [] when another process already replayed and removed it."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        fsync_dir(self.directory)
