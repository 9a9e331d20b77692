"""The nightly run as continuous protection's reconciliation (engine/reconcile.py), and the journal
under the collector and the retention rules (engine/pruner.py, engine/retention.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backup_cfn.engine import journal, naming, pointintime, reconcile, runs
from backup_cfn.engine.capture import capture_batch
from backup_cfn.engine.journal import DELETE, PUT, RECONCILED, Change
from backup_cfn.engine.manifest import Entry, Manifest
from backup_cfn.engine.pruner import prune
from backup_cfn.engine.verify import verify

from capture_support import CAPTURE, put_event, record
from engine_support import backup, content_versions, make_engine, put, sha

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def entry(sha256: str, modified: datetime) -> Entry:
    return Entry(sha256, 1, '"e"', naming.iso(modified))


def test_differences_older_than_the_rpo_target_are_missed_changes_younger_ones_are_not():
    started = NOW
    old, young = started - timedelta(hours=3), started - timedelta(minutes=5)
    previous = Manifest("ann", naming.run_id_for(started - timedelta(days=1)), naming.iso(started - timedelta(days=1)),
                        {"kept.pdf": entry("a" * 64, old), "gone.pdf": entry("b" * 64, old),
                         "just-gone.pdf": entry("c" * 64, young)})
    expected = Manifest("ann", previous.run_id, "", {**previous.entries, "skipped-then.pdf": entry("d" * 64, old)},
                        skipped={"unreadable-then.pdf": "deleted before it could be captured"})
    listed = {"kept.pdf": entry("a" * 64, old),                 # unchanged
              "changed.pdf": entry("e" * 64, started - timedelta(days=2)),   # an event never arrived
              "brand-new.pdf": entry("f" * 64, young),          # its event may still be on its way
              "unreadable-then.pdf": entry("9" * 64, old)}      # the event came; the content is read now
    changes, missed = reconcile.missed_changes(expected, listed, {}, job_started=started, previous=previous)
    by_path = {c.path: c for c in changes}
    assert set(by_path) == {"changed.pdf", "unreadable-then.pdf", "gone.pdf", "skipped-then.pdf"}
    assert missed == 3                                # the already-known unreadable one is not "missed"
    assert by_path["gone.pdf"].op == DELETE and by_path["gone.pdf"].time == naming.iso(started)
    assert by_path["changed.pdf"].op == PUT and by_path["changed.pdf"].sha256 == "e" * 64
    # A missed put is dated no earlier than the previous snapshot's run: a view replays from there.
    assert by_path["changed.pdf"].time == naming.iso(naming.run_time(previous.run_id))
    assert reconcile.missed_changes(None, listed, {}, job_started=started, previous=None) == ([], 0)


@pytest.fixture
def engine(local_env):
    built = make_engine(local_env)
    built.clock.set(datetime.now(timezone.utc).replace(microsecond=0))
    return built


def test_the_nightly_run_records_what_the_capture_missed_and_counts_it(engine):
    put(engine, "ann", "report.pdf", b"v1")
    put(engine, "ann", "notes.pdf", b"notes")
    first = backup(engine)
    assert first["changes_missed"] == 0
    # Captured: one change. Missed (EventBridge gave up, or S3 coalesced writes): two more.
    captured = put_event(engine, "ann", "report.pdf", b"v2", engine.clock())
    assert capture_batch(engine.as_role(CAPTURE), engine.settings, [record(captured)]).captured == 1
    put(engine, "ann", "new.pdf", b"never announced")
    engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key="ann/notes.pdf")
    # The next night, once those changes are older than the RPO target.
    engine.clock.advance(days=1)
    second = backup(engine)
    assert second["status"] == runs.SUCCEEDED and second["changes_missed"] == 2
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, second["run_id"], "ann")
    assert job["changes_missed"] == 2
    reconciled = [journal.read_segment(engine.s3, engine.settings.backup_bucket, ref.key)
                  for ref in journal.list_segments(engine.s3, engine.settings.backup_bucket, "ann")]
    [segment] = [s for s in reconciled if s.source == RECONCILED]
    assert {(c.path, c.op) for c in segment.changes} == {("new.pdf", PUT), ("notes.pdf", DELETE)}
    assert segment.hashes() == {sha(b"never announced")}
    # The captured change cost the nightly no read: its hash came from the journal.
    assert second["bytes_read"] == len(b"never announced")
    # From the reconciliation on, a point-in-time view has them.
    view = pointintime.view_at(engine.s3, engine.settings.backup_bucket, "ann", engine.clock() + timedelta(hours=1))
    assert {p: e.sha256 for p, e in view.manifest.entries.items()} == {
        "report.pdf": sha(b"v2"), "new.pdf": sha(b"never announced")}


def test_the_collector_keeps_the_windows_journal_and_what_it_references_and_drops_the_rest(engine):
    engine.settings = engine.settings.with_(retention_days=3)
    start = engine.clock()
    put(engine, "bo", "a.pdf", b"day 0")
    backup(engine)
    # Day 0, between runs: a version that no snapshot will ever hold, only the journal.
    between = put_event(engine, "bo", "a.pdf", b"only in the journal", start + timedelta(hours=6))
    later = put_event(engine, "bo", "a.pdf", b"day 1", start + timedelta(hours=20))
    capture_batch(engine.as_role(CAPTURE), engine.settings, [record(between), record(later)])
    for day in (1, 2, 3):
        engine.clock.set(start + timedelta(days=day))
        backup(engine)
    engine.clock.set(start + timedelta(days=3, hours=4))
    segments = journal.list_segments(engine.s3, engine.settings.backup_bucket, "bo")
    kept = prune(engine.clients, engine.settings)
    # The window starts at day 0, 04:00: its checkpoint is day 0's snapshot, and the segment captured
    # after it is needed to restore day 0 at noon. Nothing of it goes.
    assert kept.journal_segments_expired == [] and kept.journal_segments_total == len(segments) == 1
    noon = pointintime.view_at(engine.s3, engine.settings.backup_bucket, "bo", start + timedelta(hours=12),
                               window_start=engine.clock() - timedelta(days=3))
    assert noon.manifest.entries["a.pdf"].sha256 == sha(b"only in the journal")
    # Two days on, day 0 and its journal leave the window; past the grace period, the version only
    # the journal named is collected.
    engine.clock.set(start + timedelta(days=5, hours=4))
    report = prune(engine.clients, engine.settings)
    assert report.journal_segments_expired == [segments[0].key]
    assert journal.list_segments(engine.s3, engine.settings.backup_bucket, "bo") == []
    engine.clock.advance(days=2)
    prune(engine.clients, engine.settings)
    assert content_versions(engine, sha(b"only in the journal")) == 1     # a delete marker above it
    listed = engine.s3.list_objects_v2(Bucket=engine.settings.backup_bucket,
                                       Prefix=naming.content_key(sha(b"only in the journal")))
    assert listed["KeyCount"] == 0


def test_an_unreadable_kept_segment_stops_the_collection(engine):
    put(engine, "cy", "a.pdf", b"x")
    backup(engine)
    key = f"{journal.prefix('cy')}20261207T000000000000Z-{'0' * 16}{journal.SUFFIX}"
    engine.s3.put_object(Bucket=engine.settings.backup_bucket, Key=key, Body=b"not a segment")
    report = prune(engine.clients, engine.settings)
    assert report.unreadable_segments == [key] and report.content_deleted == []


def test_a_segment_round_trips_and_refuses_what_it_is_not():
    changes = (Change("b.pdf", PUT, "2026-12-07T10:00:00Z", "0a", "e1", "v1", "ab" * 32, 3, '"x"', "2026-12-07T10:00:00Z"),
               Change("a.pdf", DELETE, "2026-12-07T10:00:01Z", "0b"))
    segment = journal.Segment("ann", "2026-12-07T10:00:02.000001Z", journal.sorted_changes(changes))
    decoded = journal.decode(segment.encode())
    assert decoded == segment and [c.path for c in decoded.changes] == ["a.pdf", "b.pdf"]
    assert journal.parse_key(segment.key()) == ("ann", datetime(2026, 12, 7, 10, 0, 2, 1, tzinfo=timezone.utc))
    assert segment.encode() == segment.encode()          # byte-stable
    from backup_cfn.engine.errors import ManifestError
    for bad in (b"garbage", Manifest("ann", "20261207T020000Z", "", {}).encode()):
        with pytest.raises(ManifestError):
            journal.decode(bad)


def test_verify_checks_the_content_only_the_journal_names_and_every_segment(engine):
    put(engine, "dia", "a.pdf", b"in the snapshot")
    backup(engine)
    between = put_event(engine, "dia", "a.pdf", b"only in the journal", engine.clock() + timedelta(hours=1))
    engine.clock.advance(hours=1)
    capture_batch(engine.as_role(CAPTURE), engine.settings, [record(between)])
    bucket = engine.settings.backup_bucket
    report = verify(engine.clients, engine.settings, sample_percent=100, seed=0)
    assert report.ok and report.journal_segments == 1 and report.content_referenced == 2
    # The version only the journal holds goes missing: a restore at that hour would fail.
    engine.s3.delete_object(Bucket=bucket, Key=naming.content_key(sha(b"only in the journal")))
    [ref] = journal.list_segments(engine.s3, bucket, "dia")
    report = verify(engine.clients, engine.settings, sample_percent=0)
    assert report.problems == [f"{ref.key}:a.pdf: content {sha(b'only in the journal')} is missing"]
    # A segment that cannot be read is a problem of its own.
    engine.s3.put_object(Bucket=bucket, Key=ref.key, Body=b"not a segment")
    report = verify(engine.clients, engine.settings, sample_percent=0)
    assert len(report.problems) == 1 and ref.key in report.problems[0] and report.content_referenced == 1
