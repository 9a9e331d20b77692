"""Continuous protection's journal in the vault (issues 19 and 20 together): the lock extender keeps
each journal segment, and the content it names, as long as a minute of the window needs it; a
restore from the vault at a minute between two runs reads snapshots and segments at their first
versions, and leaves out a segment that arrived long after the capture it claims."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backup_cfn.engine import journal, naming
from backup_cfn.engine.capture import capture_batch
from backup_cfn.engine.journal import PUT, Change, FirstSegment, Segment, SegmentRef
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.vault import VaultSettings, vault_catalog
from backup_cfn.engine.verify import verify_vault
from backup_cfn.engine.vault_locks import lock_user, wanted_segment_locks
from backup_cfn.ops.restore import restore

from capture_support import CAPTURE, put_event, record
from engine_support import backup, make_engine, put, read_tree, sha
from test_vault_locks import snap
from vault_support import caught_up, make_vault, replicate_into, s3_time

UTC = timezone.utc


def segment(user: str, captured: datetime) -> FirstSegment:
    key = f"{journal.prefix(user)}{captured.strftime(journal.STAMP_FORMAT)}-{'0' * 16}{journal.SUFFIX}"
    return FirstSegment(SegmentRef(user, captured, key, 10), "v1", captured, 1)


def test_a_segment_is_kept_until_the_snapshot_after_it_leaves_the_window():
    settings = VaultSettings(bucket="b", retention=RetentionPolicy(retention_days=60), step_days=1, margin_days=0)
    runs = [datetime(2026, 12, 1, 2, tzinfo=UTC), datetime(2026, 12, 4, 2, tzinfo=UTC)]   # two nights missed
    between, after, before = (datetime(2026, 12, 1, 14, tzinfo=UTC), datetime(2026, 12, 4, 9, tzinfo=UTC),
                              datetime(2026, 11, 30, 9, tzinfo=UTC))
    now = datetime(2026, 12, 5, 4, tzinfo=UTC)
    wanted = {ref.key: until for ref, until in wanted_segment_locks(
        [snap("u", r) for r in runs], [segment("u", t) for t in (before, between, after)], now, settings,
        rounded=False).items()}
    # Captured after run 1: run 2 (three days later) is the next checkpoint; until it leaves the
    # window, restores of those three days replay the segment.
    assert wanted[segment("u", between).ref.key] == runs[1] + timedelta(days=60)
    assert wanted[segment("u", before).ref.key] == runs[0] + timedelta(days=60)
    # After the last run: no later checkpoint yet, kept ahead of the clock like a user's newest.
    assert wanted[segment("u", after).ref.key] == after + timedelta(days=60)
    # Once the next checkpoint has left the window, nothing needs the segment: lifecycle removes it.
    much_later = runs[0] + timedelta(days=61)
    assert segment("u", before).ref.key not in {ref.key for ref in wanted_segment_locks(
        [snap("u", r) for r in runs], [segment("u", before)], much_later, settings)}


@pytest.fixture
def pair(local_env):
    engine = make_engine(local_env)
    engine.clock.set(datetime.now(UTC).replace(microsecond=0))
    # A default retention shorter than the rules': what stays locked longer is the lock function's work.
    vault = make_vault(local_env, engine.clock, default_lock_days=7)
    replicate_into(engine, vault)
    s3_time(local_env, engine.clock())
    return engine, vault


def test_the_vault_locks_a_segment_and_restores_the_minute_it_serves(pair, local_env, tmp_path):
    engine, vault = pair
    put(engine, "dan", "plan.pdf", b"the plan, night one")
    backup(engine, ["dan"])
    between = engine.clock() + timedelta(hours=6)
    event = put_event(engine, "dan", "plan.pdf", b"the plan, revised at noon", between)
    engine.clock.set(between + timedelta(seconds=5))
    s3_time(local_env, engine.clock())
    assert capture_batch(engine.as_role(CAPTURE), engine.settings, [record(event)]).captured == 1
    caught_up(local_env)
    report = lock_user(vault.clients, vault.settings, "dan")
    assert not report.short and not report.late
    [first] = journal.first_segments(vault.s3, vault.bucket, "dan")
    head = vault.s3.head_object(Bucket=vault.bucket, Key=first.ref.key, VersionId=first.version_id)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= between + timedelta(days=60)
    content = naming.content_key(sha(b"the plan, revised at noon"))
    assert vault.s3.head_object(Bucket=vault.bucket, Key=content)["ObjectLockRetainUntilDate"] >= (
        between + timedelta(days=60))
    # Production lost: the minute after the revision, from the vault alone.
    catalog = vault_catalog(vault.s3, vault.bucket, max_arrival_hours=vault.settings.max_arrival_hours)
    restore(vault.s3, vault.bucket, user="dan", to=str(tmp_path / "noon"), at=between + timedelta(minutes=1),
            vault=catalog)
    assert read_tree(tmp_path / "noon") == {"plan.pdf": b"the plan, revised at noon"}
    checked = verify_vault(vault.clients, vault.settings, sample_percent=100)
    assert checked.ok and checked.journal_segments == 1 and checked.content_referenced == 2
    # Whoever holds the replication role writes a segment claiming that morning, two days later:
    # it arrived long after the capture it claims, and the restore leaves it out.
    forged = Segment("dan", naming.iso_precise(between - timedelta(hours=2)),
                     (Change("plan.pdf", PUT, naming.iso(between - timedelta(hours=2)), "ff",
                             sha256=sha(b"the plan, revised at noon"), size=25, etag='"x"'),))
    s3_time(local_env, engine.clock() + timedelta(days=2))
    vault.s3.put_object(Bucket=vault.bucket, Key=forged.key(), Body=forged.encode())
    restore(vault.s3, vault.bucket, user="dan", to=str(tmp_path / "morning"), at=between - timedelta(hours=1),
            vault=catalog)
    assert read_tree(tmp_path / "morning") == {"plan.pdf": b"the plan, night one"}
    checked = verify_vault(vault.clients, vault.settings, sample_percent=0)
    assert [p for p in checked.problems if forged.key() in p] == [
        f"{forged.key()}: written 50 h after its capture; left out"]
