"""Files that survive a crash: write elsewhere, fsync, rename into place, fsync the directory."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: Path, target: Path) -> None:
    """Atomically move a fully written file or directory into place and make the rename durable."""
    if tmp.is_file():
        fsync_file(tmp)
    tmp.replace(target)
    fsync_dir(target.parent)


def write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    publish(tmp, path)
