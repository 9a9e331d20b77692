"""Which snapshot or period an operator means: --run, --at or the newest; --since and --until.
Checked here once, with one-line errors, for ls, find, compare and restore.

`--at` is a point in time: the newest snapshot finished by then plus the journal's changes up to it
(engine/pointintime.py), so any minute of the retention window is restorable; before the window, the
newest kept snapshot at or before it."""
from __future__ import annotations

from datetime import datetime, time as day_time, timezone

from backup_cfn.engine import naming
from backup_cfn.engine.manifest import Manifest
from backup_cfn.engine.pointintime import PointInTime, view_at
from backup_cfn.engine.restore import load_for_restore
from backup_cfn.errors import UserError


def parse_at(value: str, option: str = "--at") -> datetime:
    """A date (the end of that day, UTC) or an ISO 8601 time."""
    return _parse(value, option, day_time(23, 59, 59))


def parse_since(value: str, option: str = "--since") -> datetime:
    """A date (the start of that day, UTC) or an ISO 8601 time."""
    return _parse(value, option, day_time(0, 0, 0))


def _parse(value: str, option: str, day_part: day_time,
           what: str = "a date (YYYY-MM-DD) or an ISO 8601 time") -> datetime:
    try:
        if len(value) == 10:
            return datetime.combine(datetime.fromisoformat(value).date(), day_part, timezone.utc)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise UserError(f"{option} {value!r} is not {what}") from None


def check_run_id(run_id: str | None, option: str = "--run") -> None:
    if run_id is not None and not naming.is_run_id(run_id):
        raise UserError(f"{option} {run_id!r} is not a run ID (like 20261125T020000Z)")


def check_user(user: str) -> None:
    if not naming.is_valid_user(user):
        raise UserError(f"not a user name: {user!r}")


def period(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """--since and --until as the run IDs that bound them (run IDs sort as times)."""
    first = naming.run_id_for(parse_since(since)) if since else None
    last = naming.run_id_for(parse_at(until, "--until")) if until else None
    if first and last and first > last:
        raise UserError(f"--since {since} is after --until {until}")
    return first, last


def snapshot(s3, bucket: str, user: str, *, run_id: str | None = None, at: str | None = None,
             window_start: datetime | None = None) -> Manifest:
    """The user's snapshot of a run, the user's files at a point in time, or the newest snapshot.
    An unknown user, run or time is an EngineError naming what exists (one line at the CLI)."""
    if run_id and at:
        raise UserError("give --run or --at, not both")
    check_run_id(run_id)
    check_user(user)
    if at:
        return point_in_time(s3, bucket, user, parse_at(at), window_start).manifest
    return load_for_restore(s3, bucket, user, run_id=run_id)


def point_in_time(s3, bucket: str, user: str, at: datetime, window_start: datetime | None) -> PointInTime:
    check_user(user)
    return view_at(s3, bucket, user, at, window_start=window_start)


def run_or_time(s3, bucket: str, user: str, value: str, window_start: datetime | None) -> Manifest:
    """A run ID's snapshot, or (any other date or time) the user's files at that point in time."""
    if naming.is_run_id(value):
        return snapshot(s3, bucket, user, run_id=value)
    moment = _parse(value, "run or time", day_time(23, 59, 59), what="a run ID (like 20261125T020000Z), a date "
                                                                    "(YYYY-MM-DD) or an ISO 8601 time")
    return point_in_time(s3, bucket, user, moment, window_start).manifest
