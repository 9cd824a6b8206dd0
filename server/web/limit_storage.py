"""Rate-limit counts in the state database: one budget, whichever worker or server answers.

Two storages of the ``limits`` library (which flask-limiter counts with), chosen by
``RATELIMIT_STORAGE_URI`` (``server/web/limits.py`` maps the setting to their schemes):

- ``state`` → :class:`StateStorage`: the counts live in the ``rate_limits`` table of the state
  database (``server/state.py``), so every gunicorn worker, and every server sharing a PostgreSQL
  state database behind a balancer, counts against the same budget — no Redis needed.
- ``auto`` (the default) → :class:`AutoStorage`: in memory (:class:`MemoryCounts`) while one
  process serves the instance (the embedded store admits one), in the state database when
  several may (a shared store: ``serve --workers N``, servers behind a balancer). Decided by the
  store's ``shared`` capability on the first request, once the store is open.

A hit is **one statement**, an upsert that adds to the count of a live window, or starts a new
window over a row whose window is over, and returns the count and the window's end::

    INSERT INTO rate_limits (key, count, expires_at) VALUES (:key, :amount, :now + :expiry)
    ON CONFLICT (key) DO UPDATE SET
      count = CASE WHEN rate_limits.expires_at > :now THEN rate_limits.count + :amount ELSE :amount END,
      expires_at = CASE WHEN rate_limits.expires_at > :now THEN rate_limits.expires_at ELSE :now + :expiry END
    RETURNING count, expires_at

It runs in autocommit (one round trip on PostgreSQL). It is atomic on PostgreSQL (the conflicting
row is locked and re-read before the update) and on SQLite (one writer at a time), so concurrent
hits from any number of threads and processes give exact counts. What a request then reads back
(what remains, when the window ends: the RateLimit fields) is what its own hit returned, kept on
``flask.g``: no second query. Rows whose window is over count as zero and are deleted by each
process at most once a minute (one ``DELETE … WHERE expires_at <= now``; there are as many rows
as clients active within a window, times their budgets).

Windows are fixed (flask-limiter's default strategy, ``fixed-window``): the other strategies
need per-hit entries or weighted pairs of windows, which this table does not keep, so
``server/web/limits.py`` refuses them with these storages. Times are the processes' clocks
(Unix seconds): servers behind a balancer should keep them synchronised (NTP).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import g, has_request_context
from limits.errors import ConfigurationError
from limits.storage import Storage
from sqlalchemy import bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from ..state import State, rate_limits

if TYPE_CHECKING:
    from ..services import Civicfed

log = logging.getLogger(__name__)

#: State databases whose dialect has the upsert with RETURNING used here.
DIALECTS = ("sqlite", "postgresql")
#: Seconds between two deletions of finished windows, per process.
SWEEP_EVERY = 60.0
#: Longer keys (or keys with characters PostgreSQL refuses) are stored as their SHA-256.
MAX_KEY = 200

_MEMO = "civicfed_limit_counts"


def row_key(key: str) -> str:
    """The table's key for a ``limits`` key: itself, or its digest if too long or not plain text."""
    if len(key) <= MAX_KEY and key.isascii() and key.isprintable():
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _hit_statement(dialect: str) -> Executable:
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    live = rate_limits.c.expires_at > bindparam("now")
    stmt = insert(rate_limits).values(key=bindparam("key"), count=bindparam("amount"), expires_at=bindparam("fresh"))
    return stmt.on_conflict_do_update(
        index_elements=[rate_limits.c.key],
        set_={
            "count": case((live, rate_limits.c.count + stmt.excluded["count"]), else_=stmt.excluded["count"]),
            "expires_at": case((live, rate_limits.c.expires_at), else_=stmt.excluded.expires_at),
        },
    ).returning(rate_limits.c.count, rate_limits.c.expires_at)


class StateStorage(Storage):
    """Fixed-window counts in the state database's ``rate_limits`` table.

    ``state`` opens the state database when first called (flask-limiter builds the storage with
    the application, before anything is opened).
    """

    STORAGE_SCHEME = ["civicfed+state"]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        state: Callable[[], State],
        **options: Any,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self._state = state
        self._db: tuple[Engine, Executable] | None = None
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    @property
    def storage(self) -> str:
        """Where the counts are (flask-limiter's own storages name their client here, and
        `civicfed limiter config` shows it)."""
        return "the state database's rate_limits table"

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    @property
    def engine(self) -> Engine:
        """The state database's engine, in autocommit: each statement here stands alone."""
        return self._database()[0]

    def _database(self) -> tuple[Engine, Executable]:
        """The engine, and the hit statement in its dialect."""
        if self._db is None:
            engine = self._state().engine
            dialect = engine.dialect.name
            if dialect not in DIALECTS:
                raise ConfigurationError(
                    f"rate-limit counts in the state database need SQLite or PostgreSQL, not {dialect}"
                )
            self._db = (engine.execution_options(isolation_level="AUTOCOMMIT"), _hit_statement(dialect))
        return self._db

    # -- the Storage interface -----------------------------------------------------------------
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        (engine, hit), now = self._database(), time.time()
        params = {"key": row_key(key), "amount": amount, "now": now, "fresh": now + expiry}
        with engine.connect() as conn:
            count, expires_at = conn.execute(hit, params).one()
        if has_request_context():
            g.setdefault(_MEMO, {})[key] = (int(count), float(expires_at))
        if time.monotonic() >= self._next_sweep:
            try:
                self.sweep()
            except SQLAlchemyError as exc:  # the hit is counted: a failed clean-up can wait
                log.warning("could not delete finished rate-limit windows: %s", exc)
        return int(count)

    def get(self, key: str) -> int:
        return self._window(key)[0]

    def get_expiry(self, key: str) -> float:
        return self._window(key)[1]

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(rate_limits.c.key).limit(1)).all()
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(delete(rate_limits)).rowcount

    def clear(self, key: str) -> None:
        if has_request_context():
            g.get(_MEMO, {}).pop(key, None)
        with self.engine.connect() as conn:
            conn.execute(delete(rate_limits).where(rate_limits.c.key == row_key(key)))

    # -- reading back, cleaning up -------------------------------------------------------------
    def _window(self, key: str) -> tuple[int, float]:
        """(count, end of the window) of a live window; (0, now) when there is none. Within a
        request that hit ``key``, what that hit returned."""
        if has_request_context():
            memo = g.get(_MEMO, {}).get(key)
            if memo is not None:
                return memo
        now = time.time()
        query = select(rate_limits.c.count, rate_limits.c.expires_at).where(
            rate_limits.c.key == row_key(key), rate_limits.c.expires_at > now
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (int(row[0]), float(row[1])) if row else (0, now)

    def sweep(self) -> int:
        """Delete the rows whose window is over; how many."""
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        with self.engine.connect() as conn:
            return conn.execute(delete(rate_limits).where(rate_limits.c.expires_at <= time.time())).rowcount


class MemoryCounts(Storage):
    """Fixed-window counts in this process's memory (``auto`` while one process serves the
    instance). limits' own MemoryStorage expires its keys from a timer thread that it starts again
    on nearly every hit: a thread a request, 0.65 ms at the median and up to 17 ms under load
    (measured). Here a window that is over counts as zero when read, and finished windows are
    deleted by a hit at most once a minute: no thread."""

    STORAGE_SCHEME = ["civicfed+memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self._guard = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}  # key → (count, end of its window)
        self._next_sweep = time.monotonic() + SWEEP_EVERY

    @property
    def storage(self) -> str:
        return "memory (this process)"

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._guard:
            count, end = self._windows.get(key, (0, now))
            if end <= now:  # a new window, fixed from its first hit
                count, end = 0, now + expiry
            self._windows[key] = (count + amount, end)
            if time.monotonic() >= self._next_sweep:
                self._sweep(now)
        return count + amount

    def get(self, key: str) -> int:
        return self._window(key)[0]

    def get_expiry(self, key: str) -> float:
        return self._window(key)[1]

    def _window(self, key: str) -> tuple[int, float]:
        now = time.time()
        count, end = self._windows.get(key, (0, now))
        return (count, end) if end > now else (0, now)

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._guard:
            n = len(self._windows)
            self._windows.clear()
        return n

    def clear(self, key: str) -> None:
        with self._guard:
            self._windows.pop(key, None)

    def sweep(self) -> int:
        """Delete the windows that are over; how many."""
        with self._guard:
            return self._sweep(time.time())

    def _sweep(self, now: float) -> int:
        self._next_sweep = time.monotonic() + SWEEP_EVERY
        over = [key for key, (_, end) in self._windows.items() if end <= now]
        for key in over:
            del self._windows[key]
        return len(over)


class AutoStorage(Storage):
    """``auto``: in memory while one process serves the instance, in the state database when
    several may — the store's ``shared`` capability, read on first use (the store is open then)."""

    STORAGE_SCHEME = ["civicfed+auto"]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        services: Civicfed,
        **options: Any,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self._services = services
        self._guard = threading.Lock()
        self._chosen: MemoryCounts | StateStorage | None = None

    @property
    def chosen(self) -> MemoryCounts | StateStorage:
        if self._chosen is None:
            shared = self._services.store.shared
            with self._guard:
                if self._chosen is None:
                    if shared:
                        self._chosen = StateStorage(state=lambda: self._services.state)
                    else:
                        self._chosen = MemoryCounts()
                    where = "the state database" if shared else "memory"
                    log.info("rate-limit counts in %s (RATELIMIT_STORAGE_URI=auto)", where)
        return self._chosen

    @property
    def storage(self) -> str:
        """Where the counts are (shown by `civicfed limiter config`)."""
        return self.chosen.storage

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (SQLAlchemyError, ValueError)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self.chosen.incr(key, expiry, amount)

    def get(self, key: str) -> int:
        return self.chosen.get(key)

    def get_expiry(self, key: str) -> float:
        return self.chosen.get_expiry(key)

    def check(self) -> bool:
        return self.chosen.check()

    def reset(self) -> int | None:
        return self.chosen.reset()

    def clear(self, key: str) -> None:
        self.chosen.clear(key)


__all__ = ["AutoStorage", "MemoryCounts", "StateStorage", "row_key"]
