"""Staged writes of the embedded store: a large import written to a copy of the store that then
becomes the store, so that it is all or nothing without one transaction of millions of quads in
memory.

An Oxigraph transaction is held in memory until it commits (about 1.9 KB a quad): one import of a
million records would need gigabytes. Instead, the store is checkpointed (RocksDB hard links:
instant, no copy), the import writes to the checkpoint in bounded batches — with ``bulk_load``
for what only adds —, and the checkpoint then becomes the live store. Readers keep reading the
live store meanwhile, and see the import all at once.

Everything stays inside the configured directory ``PATH`` (one directory to back up or mount): the
store is ``PATH`` itself until the first staged write, then ``PATH/store.1``, ``PATH/store.2``…,
and the file ``PATH/live`` names the live one. The copy becomes the store by one atomic rename of
that file, so a process killed at any point leaves either the old store or the new one, whole. A
directory is never renamed while open (RocksDB closing an instance deletes its obsolete files by
path): the copy stays where it was written, and what it replaced is removed once no reader can be
using it (the next staged write, or the next start: :func:`sweep`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

POINTER = "live"
_COPY = re.compile(r"store\.(\d+)")


def pointer(path: Path) -> Path:
    """The file naming the live copy (absent: ``path`` itself is the store)."""
    return path / POINTER


def live_dir(path: Path) -> Path:
    """Where the store configured at ``path`` lives now (what a read-only reader opens)."""
    try:
        name = pointer(path).read_text().strip()
    except FileNotFoundError:
        return path
    if not _COPY.fullmatch(name):
        raise ValueError(f"{pointer(path)} names {name!r}, not a copy of the store (store.N)")
    return path / name


def next_dir(path: Path) -> Path:
    """A directory for the next staged copy."""
    match = _COPY.fullmatch(live_dir(path).name) if live_dir(path) != path else None
    return path / f"store.{int(match.group(1)) + 1 if match else 1}"


def make_live(path: Path, target: Path) -> None:
    """Make ``target`` (a complete, flushed copy) the store: one atomic rename."""
    _sync_dir(target)
    tmp = path / (POINTER + ".tmp")
    with open(tmp, "w") as f:
        f.write(target.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(pointer(path))
    _sync_dir(path)


def sweep(path: Path, keep: Path | None = None) -> list[str]:
    """Remove what is not the live store inside ``path``: copies a killed import left, stores a
    staged write replaced (a copy, or the files of ``path`` itself once a copy is live); never
    ``keep``. The caller holds the live store open (its lock: no other process writes a copy)."""
    live = live_dir(path)
    removed = []
    for entry in path.iterdir():
        if entry in (live, keep) or entry.name == POINTER:
            continue
        if entry.is_dir() and _COPY.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
        elif live != path and entry.is_file():  # the store `path` was, before its first copy
            entry.unlink(missing_ok=True)
        else:
            continue
        removed.append(entry.name)
    if removed:
        log.info("the embedded store at %s: removed %d entries no longer in use", path, len(removed))
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


class LiveWrites:
    """Writes to the live store, which threads make side by side, and a staged write, which waits
    for those under way and holds new ones until its copy has replaced the store (or is thrown
    away): a write landing in the live store after the copy was taken would be lost with it.

    Most writes are kept out of a staged write by the instance's commit lock, which it holds
    throughout; a territory's derived data (its indicator values and cube) is written outside
    that lock (server/records/write.py), and this keeps it out."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._writing = 0
        self._staging = False

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._staging)
            self._writing += 1
        try:
            yield
        finally:
            with self._changed:
                self._writing -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def stage(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._staging)
            self._staging = True  # writes arriving from now on wait
            self._changed.wait_for(lambda: self._writing == 0)
        try:
            yield
        finally:
            with self._changed:
                self._staging = False
                self._changed.notify_all()
