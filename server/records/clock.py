"""Record times: strictly increasing UTC timestamps (µs) that double as sort keys and sync cursors."""

from __future__ import annotations

import datetime as dt
import threading
import time

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def micros(moment: dt.datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding)."""
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def moment(time_us: int) -> dt.datetime:
    """The UTC time of a number of microseconds since the epoch (``micros`` undone)."""
    return EPOCH + dt.timedelta(microseconds=time_us)


class Clock:
    """Strictly increasing UTC timestamps (µs): the record-modified times double as sort keys."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> dt.datetime:
        with self._lock:
            now = time.time_ns() // 1000
            self._last = max(now, self._last + 1)
            return dt.datetime.fromtimestamp(self._last / 1_000_000, dt.UTC)

    @property
    def last_us(self) -> int:
        return self._last

    def advance_past(self, us: int) -> None:
        """Never give a time at or before ``us`` (another process's last write)."""
        with self._lock:
            self._last = max(self._last, us)


def etag(modified: dt.datetime) -> str:
    """A record's entity tag: its version (the time this server last wrote it), opaque to clients."""
    return f'"{micros(modified)}"'
