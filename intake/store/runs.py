"""Store stage, the runs: what each command did, and the store's status. SQLAlchemy Core only.

A table group of ``Store`` (``store.runs``): one row per run, for ``status`` and the digest's
intake health.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from intake.store import rows, schema
from intake.store.group import TableGroup
from intake.store.outbox import state_counts


class RunRows(TableGroup):
    """Run records, and ``status`` over every table (``store.runs``)."""

    def record_run(
        self, command: str, started_at: datetime, finished_at: datetime,
        counts: dict[str, int], error: str | None,
    ) -> None:  # fmt: skip
        """Remember one run for ``status``."""
        row = {"command": command, "started_at": started_at, "finished_at": finished_at,
               "counts": counts, "error": error}  # fmt: skip
        with self._begin() as conn:
            conn.execute(insert(schema.runs), [row])

    def status(self) -> dict[str, Any]:
        """Checkpoints, counts, the last run and the last error, as plain values."""
        with self._connect() as conn:
            cp = conn.execute(select(schema.checkpoints)).mappings().all()
            runs = schema.runs.c
            last = conn.execute(select(schema.runs).order_by(runs.id.desc()).limit(1)).first()
            failed = select(schema.runs).where(runs.error.is_not(None))
            last_error = conn.execute(failed.order_by(runs.id.desc()).limit(1)).first()
            return {
                "checkpoints": [{k: rows.plain(v) for k, v in row.items()} for row in cp],
                "stories": conn.execute(select(func.count()).select_from(schema.stories)).scalar(),
                "quarantined": conn.execute(
                    select(func.count()).select_from(schema.quarantine)
                ).scalar(),
                "pending_marks": conn.execute(
                    select(func.count()).select_from(schema.pending_marks)
                ).scalar(),
                "acknowledgements": state_counts(conn),
                "last_run": rows.run_summary(last),
                "last_error": rows.run_summary(last_error),
            }
