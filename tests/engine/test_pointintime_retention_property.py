"""Point in time under the collector and the retention rules, as a property: random timelines of
writes, overwrites and deletes by two users over six days, each change captured by the capture
function some time after it happened (S3's events shuffled, some twice), nightly runs on random
nights, the collector after every night with a two-day window; then a restore at a random minute
of the window (files written to a folder, every SHA-256 checked) equals the source at that minute.

What it holds that tests/engine/test_pointintime_property.py does not: the collector's cuts (the
"base" checkpoint before the window, the journal segments it keeps, the content only they name,
deleted past the grace period) never take anything a minute inside the window needs, and the
restore reads every byte back from the backup bucket, so collected content would fail it."""
from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from rich.console import Console

from backup_cfn.engine.capture import capture_batch
from backup_cfn.engine.errors import RestoreError
from backup_cfn.engine.pruner import prune
from backup_cfn.ops.restore import restore

from capture_support import CAPTURE, files_at, record, s3_event
from engine_support import OPERATOR, PRUNER, backup, make_engine, read_tree

USERS, PATHS = ("ann", "ben"), ("a.pdf", "b.pdf", "dir/c.pdf")
DAYS, RETENTION_DAYS = 6, 2
NIGHTLY, COLLECTION = timedelta(hours=2), timedelta(hours=4)
MINUTES = DAYS * 24 * 60
QUIET = Console(quiet=True)

# (minute of the timeline, user, path, write or delete, version written, minutes until captured)
operations = st.lists(st.tuples(st.integers(0, MINUTES - 1), st.sampled_from(USERS), st.sampled_from(PATHS),
                                st.sampled_from(("write", "write", "delete")), st.integers(0, 3),
                                st.integers(0, 90)),
                      min_size=1, max_size=20)
timelines = st.fixed_dictionaries({
    "operations": operations,
    "nights": st.sets(st.integers(1, DAYS), max_size=DAYS),   # the nights a run happened
    "queries": st.lists(st.integers(0, RETENTION_DAYS * 24 * 60), min_size=1, max_size=3),
    "order": st.randoms(use_true_random=False),
    "duplicates": st.floats(0, 0.5),
})


def content(user: str, path: str, version: int) -> bytes:
    return f"{user}/{path} version {version}\n".encode() * (1 + version)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(timeline=timelines)
def test_a_restore_at_any_minute_of_the_window_after_collections_equals_the_source_then(local_env, timeline):
    engine = make_engine(local_env, retention_days=RETENTION_DAYS)
    # After the emulator's own clock: the checkpoints' entries carry S3's LastModified (real time),
    # which must come before every change of the timeline for the order to be the timeline's.
    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    at = lambda minute: start + timedelta(minutes=minute)  # noqa: E731
    source = engine.settings.source_bucket
    history: list[tuple[int, str, str, bytes | None]] = []      # (minute, user, path, content or None)
    pending: list[tuple[int, dict]] = []                        # (minute it is captured, its event)

    def capture(moment: datetime, everything: bool = False) -> None:
        """Each event whose capture time has come (every one, before a nightly run: the emulator's
        LastModified is real time, so a change the run lists before its event was captured would
        count as missed), shuffled, some twice, captured at `moment`."""
        nonlocal pending
        due = [event for when, event in pending if everything or at(when) <= moment]
        pending = [(when, event) for when, event in pending if not everything and at(when) > moment]
        if not due:
            return
        due += [event for event in due if timeline["order"].random() < timeline["duplicates"]]
        timeline["order"].shuffle(due)
        engine.clock.set(moment)
        outcome = capture_batch(engine.as_role(CAPTURE), engine.settings, [record(e) for e in due])
        assert not outcome.failed and not outcome.ignored

    # Everything in time order: the changes, each night's run (on the nights one happened) at 02:00
    # and the collector at 04:00; a change at the minute of a run comes first.
    nights = [(day * 24 * 60 + int(NIGHTLY.total_seconds() // 60), 1, ("run", day)) for day in range(1, DAYS + 1)
              if day in timeline["nights"]]
    collections = [(day * 24 * 60 + int(COLLECTION.total_seconds() // 60), 1, ("collect", day))
                   for day in range(1, DAYS + 1)]
    changes = [(op[0], 0, op) for op in timeline["operations"]]
    for minute, _, action in sorted(nights + collections + changes, key=lambda a: (a[0], a[1])):
        capture(at(minute))
        if action[0] == "run":
            capture(at(minute), everything=True)
            engine.clock.set(at(minute))
            assert backup(engine)["status"] == "SUCCEEDED"
            continue
        if action[0] == "collect":
            engine.clock.set(at(minute))
            report = prune(engine.as_role(PRUNER), engine.settings)
            assert not report.unreadable_manifests and not report.unreadable_segments
            continue
        _, user, path, kind, version, lag = action
        key = f"{user}/{path}"
        if kind == "write":
            data = content(user, path, version)
            response = engine.s3.put_object(Bucket=source, Key=key, Body=data)
            event = s3_event(source, key, at(minute), version_id=response["VersionId"], size=len(data),
                             etag=response["ETag"])
            history.append((minute, user, path, data))
        elif files_at(history, user, minute).get(path) is not None:
            response = engine.s3.delete_object(Bucket=source, Key=key)
            event = s3_event(source, key, at(minute), deleted=True, version_id=response["VersionId"])
            history.append((minute, user, path, None))
        else:
            continue
        pending.append((minute + lag, event))
    end = engine.clock()
    assert not pending
    window_start = engine.settings.window_start()

    for offset in timeline["queries"]:
        moment = window_start + timedelta(minutes=offset)
        minute = int((moment - start).total_seconds() // 60)
        for user in USERS:
            expected = files_at(history, user, minute)
            if not any(h[1] == user and h[0] <= minute for h in history):
                continue        # the user had nothing yet: nothing to restore
            folder = Path(tempfile.mkdtemp(prefix="pit-gc-"))
            try:
                restore(engine.as_role(OPERATOR).s3, engine.settings.backup_bucket, user=user, to=str(folder),
                        at=moment, window_start=window_start, console=QUIET)
            except RestoreError:
                # Every file of the user deleted and nothing of them left to replay: "no backup" is
                # the right answer then, and only then.
                assert expected == {}, (user, minute, end, history)
            assert read_tree(folder) == expected, (user, minute, end, history)
