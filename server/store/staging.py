"""Staged writes of the embedded store: a large import written to a copy of the store that then
becomes the store, so that it is all or nothing without one transaction of millions of quads in
memory.

An Oxigraph transaction is held in memory until it commits (about 1.9 KB a quad): one import of a
million records would need gigabytes. Instead, the store is checkpointed beside itself (RocksDB
hard links: instant, no copy), the import writes to the checkpoint in bounded batches — with
``bulk_load`` for what only adds —, and the checkpoint then becomes the live store. Readers keep
reading the live store meanwhile, and see the import all at once.

Where the store lives: the configured directory ``PATH`` until the first staged write, then
``PATH.1``, ``PATH.2``… — the file ``PATH.live`` names the live one. The copy becomes the store
by one atomic rename of that file, so a process killed at any point leaves either the old store
or the new one, whole. A directory is never renamed while open: RocksDB closing an instance
deletes its obsolete files by path, and would delete the new store's. The copy stays where it
was written, and the store it replaced is removed once no reader can be using it (the next
staged write, or the next start: :func:`sweep`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def pointer(path: Path) -> Path:
    """The file naming the live directory (absent: ``path`` itself is the store)."""
    return path.with_name(path.name + ".live")


def live_dir(path: Path) -> Path:
    """Where the store configured at ``path`` lives now (what a read-only reader opens)."""
    try:
        name = pointer(path).read_text().strip()
    except FileNotFoundError:
        return path
    return path.with_name(name)


def next_dir(path: Path) -> Path:
    """A directory for the next staged copy."""
    match = re.fullmatch(re.escape(path.name) + r"\.(\d+)", live_dir(path).name)
    return path.with_name(f"{path.name}.{int(match.group(1)) + 1 if match else 1}")


def make_live(path: Path, target: Path) -> None:
    """Make ``target`` (a complete, flushed, closed-or-owned copy) the store: one atomic rename."""
    _sync_dir(target)
    tmp = pointer(path).with_name(pointer(path).name + ".tmp")
    with open(tmp, "w") as f:
        f.write(target.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(pointer(path))
    _sync_dir(path.parent)


def sweep(path: Path, keep: Path | None = None) -> list[Path]:
    """Remove the directories of the store that are not live (copies a killed import left, stores
    a staged write replaced), but ``keep``; the caller holds the live store open (its lock: no
    other process is writing a copy). What was removed."""
    live = live_dir(path)
    removed = []
    for candidate in [path, *path.parent.glob(path.name + ".*")]:
        if candidate in (live, keep) or not candidate.is_dir():
            continue
        if candidate != path and not re.fullmatch(re.escape(path.name) + r"\.\d+", candidate.name):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    if removed:
        log.info("the embedded store at %s: removed %s", path, ", ".join(p.name for p in removed))
    return removed


def discard(copy: Path) -> None:
    """Forget a staged copy (its import failed or changed nothing)."""
    shutil.rmtree(copy, ignore_errors=True)


def _sync_dir(path: Path) -> None:
    """Make renames and new files in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
