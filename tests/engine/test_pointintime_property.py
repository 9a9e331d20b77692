"""Point in time as a property: random timelines of writes, overwrites and deletes by two users, S3's
events delivered in any order, in any batches, some of them twice, nightly runs at random minutes;
the files restored at a random minute equal the source at that minute (engine/pointintime.py over
the journal written by engine/capture.py and the snapshots written by the worker).

The source is the emulator's (versioned, as the stack's); each change's event is the one S3 sends
(tests/events/s3_object_*.json), with the change's minute as its time and a growing sequencer."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from backup_cfn.engine import pointintime
from backup_cfn.engine.capture import capture_batch

from capture_support import CAPTURE, files_at, record, s3_event
from engine_support import backup, make_engine

USERS, PATHS = ("ann", "ben"), ("a.pdf", "b.pdf", "dir/c.pdf")
MINUTES = 10   # few minutes, many changes: changes of one path within one minute are common

operations = st.lists(st.tuples(st.integers(0, MINUTES), st.sampled_from(USERS), st.sampled_from(PATHS),
                                st.sampled_from(("write", "write", "delete")), st.integers(0, 3)),
                      min_size=1, max_size=15)
timelines = st.fixed_dictionaries({
    "operations": operations,
    "runs": st.lists(st.integers(0, MINUTES), max_size=2, unique=True),
    "queries": st.lists(st.integers(0, MINUTES + 2), min_size=1, max_size=4),
    "order": st.randoms(use_true_random=False),
    "duplicates": st.floats(0, 0.5),
    "batch": st.integers(1, 5),
})


def content(user: str, path: str, version: int) -> bytes:
    return f"{user}/{path} version {version}\n".encode() * (1 + version)


def deliver(engine, events: list[dict], order, duplicates: float, batch: int) -> None:
    """The events, shuffled, some twice, in batches: as EventBridge and the mapping may deliver them."""
    pending = events + [e for e in events if order.random() < duplicates]
    order.shuffle(pending)
    for start in range(0, len(pending), batch):
        outcome = capture_batch(engine.as_role(CAPTURE), engine.settings,
                                [record(e) for e in pending[start:start + batch]])
        assert not outcome.failed and not outcome.ignored


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(timeline=timelines)
def test_a_restore_at_any_minute_equals_the_source_at_that_minute(local_env, timeline):
    engine = make_engine(local_env)
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(days=1)
    at = lambda minute: start + timedelta(minutes=minute)  # noqa: E731
    source = engine.settings.source_bucket
    history: list[tuple[int, str, str, bytes | None]] = []     # (minute, user, path, content or None)
    undelivered: list[dict] = []
    runs = sorted(timeline["runs"])
    for minute, user, path, kind, version in sorted(timeline["operations"], key=lambda op: op[0]):
        while runs and runs[0] < minute:
            deliver(engine, undelivered, timeline["order"], timeline["duplicates"], timeline["batch"])
            undelivered = []
            engine.clock.set(at(runs.pop(0)))
            assert backup(engine)["status"] == "SUCCEEDED"
        key = f"{user}/{path}"
        if kind == "write":
            data = content(user, path, version)
            response = engine.s3.put_object(Bucket=source, Key=key, Body=data)
            undelivered.append(s3_event(source, key, at(minute), version_id=response["VersionId"], size=len(data),
                                        etag=response["ETag"]))
            history.append((minute, user, path, data))
        elif _exists(history, user, path):
            response = engine.s3.delete_object(Bucket=source, Key=key)
            undelivered.append(s3_event(source, key, at(minute), deleted=True, version_id=response["VersionId"]))
            history.append((minute, user, path, None))
    deliver(engine, undelivered, timeline["order"], timeline["duplicates"], timeline["batch"])
    for minute in runs:                       # runs after the last change
        engine.clock.set(at(minute))
        assert backup(engine)["status"] == "SUCCEEDED"

    for query in timeline["queries"]:
        for user in USERS:
            expected = files_at(history, user, query)
            if not expected and not any(h[1] == user for h in history if h[0] <= query):
                continue     # the user had nothing yet: an empty view, or no backup at all to ask
            view = pointintime.view_at(engine.s3, engine.settings.backup_bucket, user, at(query))
            assert {p: e.sha256 for p, e in view.manifest.entries.items()} == {
                p: hashlib.sha256(d).hexdigest() for p, d in expected.items()}, (user, query, history)


def _exists(history, user: str, path: str) -> bool:
    last = [h for h in history if h[1:3] == (user, path)]
    return bool(last) and last[-1][3] is not None
