"""Import runs in the state database: queued, claimed by one runner, their progress, their end.

The state database is what every process of an instance shares, so it is also how a
``civicfed import`` hands its run to the server owning the embedded store and follows it: the
command queues the run, the server's runner claims it, both read its row.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from ..state import State, import_runs

#: A run's life: queued → running → done | failed (``unchanged``: done, and the source changed
#: nothing since its previous run).
QUEUED, RUNNING, DONE, UNCHANGED, FAILED = "queued", "running", "done", "unchanged", "failed"
FINISHED = (DONE, UNCHANGED, FAILED)
#: How often a running run says its process is alive (seconds).
BEAT = 5.0


@dataclass(frozen=True)
class Run:
    id: str
    territory: str
    format: str
    source: str
    path: str | None
    options: dict[str, Any]
    agent: str
    status: str
    read: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    sha256: str | None
    result: dict[str, Any] | None
    message: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def dry_run(self) -> bool:
        return bool(self.options.get("dry_run"))

    def to_dict(self) -> dict[str, Any]:
        """The run as the JSON API and ``civicfed import report`` show it."""
        out: dict[str, Any] = {
            "id": self.id,
            "territory": self.territory,
            "format": self.format,
            "source": self.source,
            "agent": self.agent,
            "status": self.status,
            "dry_run": self.dry_run,
            "read": self.read,
            "requested": _iso(self.created_at),
            "started": _iso(self.started_at),
            "ended": _iso(self.ended_at),
            "sha256": self.sha256,
        }
        if self.message:
            out["message"] = self.message
        if self.result is not None:
            out.update(self.result)
        return out


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite gives naive datetimes back
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_run_id() -> str:
    """Sortable by creation time, unique across processes: ``20261130T091300Z-3f9a1c``."""
    return f"{_now():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class Runs:
    """The import runs of an instance."""

    def __init__(self, state: State) -> None:
        self.engine = state.engine

    def queue(
        self,
        territory: str,
        format_name: str,
        source: str,
        *,
        path: str | None,
        options: dict[str, Any],
        agent: str,
        status: str = QUEUED,
    ) -> Run:
        run_id = new_run_id()
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                insert(import_runs).values(
                    id=run_id, territory=territory, format=format_name, source=source[:2048], path=path,
                    options=json.dumps(options), agent=agent[:200], status=status, read=0, created_at=now,
                    started_at=now if status == RUNNING else None,
                )
            )  # fmt: skip
        run = self.get(run_id)
        assert run is not None
        return run

    def claim(self) -> Run | None:
        """The oldest queued run, now running for the caller (None if there is none): a run is
        claimed once, whichever process asks."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(import_runs.c.id)
                .where(import_runs.c.status == QUEUED)
                .order_by(import_runs.c.created_at, import_runs.c.id)  # ids order by the second only
                .limit(5)
            ).all()
            for (run_id,) in rows:
                done = conn.execute(
                    update(import_runs)
                    .where(and_(import_runs.c.id == run_id, import_runs.c.status == QUEUED))
                    .values(status=RUNNING, started_at=_now())
                )
                if done.rowcount == 1:
                    break
            else:
                return None
        return self.get(run_id)

    def claim_this(self, run_id: str) -> bool:
        """Claim one queued run (a command taking back the run no server took)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(import_runs)
                .where(and_(import_runs.c.id == run_id, import_runs.c.status == QUEUED))
                .values(status=RUNNING, started_at=_now())
            )
        return done.rowcount == 1

    def progress(self, run_id: str, read: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(import_runs).where(import_runs.c.id == run_id).values(read=read, heartbeat_at=_now()))

    def beat(self, run_id: str) -> None:
        """The run's process is alive (its runner calls it every ``BEAT`` seconds)."""
        with self.engine.begin() as conn:
            conn.execute(update(import_runs).where(import_runs.c.id == run_id).values(heartbeat_at=_now()))

    def finish(
        self,
        run_id: str,
        status: str,
        *,
        read: int | None = None,
        sha256: str | None = None,
        result: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status, "ended_at": _now(), "message": message}
        if read is not None:
            values["read"] = read
        if sha256 is not None:
            values["sha256"] = sha256
        if result is not None:
            values["result"] = json.dumps(result, ensure_ascii=False, default=str)
        with self.engine.begin() as conn:
            conn.execute(update(import_runs).where(import_runs.c.id == run_id).values(**values))

    def get(self, run_id: str) -> Run | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(import_runs).where(import_runs.c.id == run_id)).mappings().first()
        return None if row is None else _run(row)

    def list(self, territory: str, limit: int = 100) -> list[Run]:
        """The territory's runs, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(import_runs)
                .where(import_runs.c.territory == territory)
                .order_by(import_runs.c.id.desc())
                .limit(limit)
            ).mappings()
            return [_run(r) for r in rows]

    def last_done(self, territory: str, format_name: str, source: str) -> Run | None:
        """The latest run of this source that wrote (a later unchanged run points back to it):
        not a dry run, nor one whose items were all rejected."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(import_runs)
                .where(
                    and_(
                        import_runs.c.territory == territory,
                        import_runs.c.format == format_name,
                        import_runs.c.source == source[:2048],
                        import_runs.c.status == DONE,
                    )
                )
                .order_by(import_runs.c.id.desc())
                .limit(50)
            ).mappings()
            for row in rows:
                run = _run(row)
                if not run.dry_run and (run.result or {}).get("written"):
                    return run
        return None

    def fail_interrupted(self, stale_after: float | None = None) -> int:
        """Runs left running by a process that stopped (killed, crashed): failed. Their write was
        one atomic commit, so the store holds all of it or none; the message says to run again.
        Without ``stale_after``, every running run (call it only where no other process may be
        running one: the embedded store's owner); with it, those whose process has not said it
        is alive for that many seconds (a store several processes share)."""
        alive = import_runs.c.status == RUNNING
        if stale_after is not None:
            since = _now() - dt.timedelta(seconds=stale_after)
            beat = import_runs.c.heartbeat_at
            alive = and_(alive, or_(beat < since, and_(beat.is_(None), import_runs.c.started_at < since)))
        with self.engine.begin() as conn:
            done = conn.execute(
                update(import_runs)
                .where(alive)
                .values(
                    status=FAILED,
                    ended_at=_now(),
                    message="interrupted: the process running it stopped; nothing of it was written "
                    "unless its report says so. Run the import again.",
                )
            )
        return int(done.rowcount or 0)


def _run(row: Any) -> Run:
    return Run(
        id=row["id"],
        territory=row["territory"],
        format=row["format"],
        source=row["source"],
        path=row["path"],
        options=json.loads(row["options"] or "{}"),
        agent=row["agent"],
        status=row["status"],
        read=int(row["read"] or 0),
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        sha256=row["sha256"],
        result=json.loads(row["result"]) if row["result"] else None,
        message=row["message"],
    )
