"""The lock extender (engine/vault_locks.py) and the vault's version reads, on the emulator with
the vault in its own account: what the rules keep is locked as long as they keep it, nothing is
ever shortened, forged versions and late snapshots change nothing, and lifecycle removes exactly
what no lock holds."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from backup_cfn.engine import naming
from backup_cfn.engine.manifest import SnapshotRef
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.vault import VaultSettings, VaultSnapshot, vault_catalog
from backup_cfn.engine.vault_locks import (extend, grid_phase, lock_date, lock_user, on_grid, period_end,
                                           wanted_locks)
from backup_cfn.ops.restore import restore

from engine_support import backup, make_engine, put, sha
from vault_support import caught_up, make_vault, replicate_into, s3_time

UTC = timezone.utc


def snap(user: str, run: datetime) -> VaultSnapshot:
    run_id = naming.run_id_for(run)
    return VaultSnapshot(SnapshotRef(user, run_id, naming.manifest_key(user, run_id), version_id="v1"), run, 1)


# --- how long the rules keep each snapshot (no emulator) -----------------------------------------------------

def test_each_rule_gives_the_date_it_keeps_a_snapshot_until():
    settings = VaultSettings(bucket="b", retention=RetentionPolicy(retention_days=60, keep_monthly=12),
                             step_days=1, margin_days=0)
    days = [datetime(2026, 1, 1, 2, tzinfo=UTC) + timedelta(days=n) for n in range(0, 100)]
    snapshots = [snap("u", d) for d in days]
    now = days[-1] + timedelta(hours=4)
    wanted = wanted_locks(snapshots, now, settings, rounded=False)
    by_run = {ref.run_id: until for ref, until in wanted.items()}
    newest = naming.run_id_for(days[-1])
    assert by_run[newest] == days[-1] + timedelta(days=60)                              # newest, recent
    inside = naming.run_id_for(days[-10])
    assert by_run[inside] == days[-10] + timedelta(days=60)                             # within
    january_last = naming.run_id_for(datetime(2026, 1, 31, 2, tzinfo=UTC))
    assert by_run[january_last] == datetime(2027, 1, 1, tzinfo=UTC)                      # monthly, ended
    assert naming.run_id_for(datetime(2026, 1, 30, 2, tzinfo=UTC)) not in by_run          # expired
    # The current month's newest is the user's newest: no monthly lock until the month ends.
    assert by_run[newest] < datetime(2027, 1, 1, tzinfo=UTC)
    # A user with no snapshot for a year (or a production account lost): its newest stays locked
    # ahead of the clock, renewed by each daily pass.
    later = days[-1] + timedelta(days=365)
    [(ref, until)] = wanted_locks(snapshots, later, settings, rounded=False).items()
    assert ref.run_id == newest and until == later + timedelta(days=settings.newest_horizon_days)


def test_period_ends_and_the_step_grid():
    run = datetime(2026, 3, 18, 2, tzinfo=UTC)
    assert period_end(run, "monthly", 12) == datetime(2027, 3, 1, tzinfo=UTC)
    assert period_end(run, "yearly", 2) == datetime(2028, 1, 1, tzinfo=UTC)
    assert period_end(run, "weekly", 1) == datetime(2026, 3, 23, tzinfo=UTC)          # the next Monday
    gridded = on_grid(run, 7)
    assert gridded >= run and (gridded.date() - datetime(1970, 1, 1).date()).days % 7 == 0
    assert on_grid(gridded, 7) == gridded and gridded - run < timedelta(days=7)
    for phase in range(7):
        shifted = on_grid(run, 7, phase)
        assert run <= shifted < run + timedelta(days=7)
        assert ((shifted.date() - datetime(1970, 1, 1).date()).days - phase) % 7 == 0


def test_each_user_has_a_grid_day_of_its_own_and_no_lock_ends_before_the_rules_need():
    """One shared grid released every user's dropped content on the same day (the vault's excess over
    what the kept snapshots reference peaked at 1.115x before each grid date); a phase per user
    spreads the releases over the step's days, and never shortens a lock."""
    settings = VaultSettings(bucket="b", retention=RetentionPolicy(retention_days=60), step_days=7, margin_days=1)
    users = [f"client-{n:04d}" for n in range(1, 1001)]
    phases = Counter(grid_phase(user, 7) for user in users)
    assert set(phases) == set(range(7)) and max(phases.values()) < 1.25 * len(users) / 7
    assert all(grid_phase(user, 7) == grid_phase(user, 7) for user in users[:10])     # stable
    needed = datetime(2026, 5, 3, 17, 30, tzinfo=UTC)
    for user in users[:50]:
        until = lock_date(needed, user, settings)
        assert needed + timedelta(days=1) <= until < needed + timedelta(days=1 + 7)
        assert until.time() == datetime.min.time()


# --- on the emulator: the vault in its own account ---------------------------------------------------------

@pytest.fixture
def pair(local_env):
    engine = make_engine(local_env)
    vault = make_vault(local_env, engine.clock)
    replicate_into(engine, vault)
    s3_time(local_env, engine.clock())
    return engine, vault


def _retention(vault, key: str, version_id: str | None = None) -> tuple[str, datetime]:
    args = {"VersionId": version_id} if version_id else {}
    head = vault.s3.head_object(Bucket=vault.bucket, Key=key, **args)
    return head.get("ObjectLockMode"), head["ObjectLockRetainUntilDate"]


def _first_version(vault, key: str) -> str:
    versions = [v for v in vault.s3.list_object_versions(Bucket=vault.bucket, Prefix=key)["Versions"] if v["Key"] == key]
    return versions[-1]["VersionId"]


def test_unchanged_content_is_locked_as_long_as_the_newest_snapshot_needs_it(pair, local_env):
    engine, vault = pair
    put(engine, "alice", "report.pdf", b"the same report every day", checksum=True)
    for day in range(3):
        s3_time(local_env, engine.clock())
        backup(engine, ["alice"])
        caught_up(local_env)
        report = lock_user(vault.clients, vault.settings, "alice")
        assert not report.short and not report.late
        engine.clock.advance(days=1)
    content = naming.content_key(sha(b"the same report every day"))
    mode, until = _retention(vault, content, _first_version(vault, content))
    newest = engine.clock() - timedelta(days=1)
    assert mode == "COMPLIANCE"
    assert until >= newest + timedelta(days=60) and until >= engine.clock() + timedelta(days=13)


def test_a_pass_with_nothing_new_sends_no_lock_request(pair, local_env):
    engine, vault = pair
    put(engine, "bob", "a.txt", b"a", checksum=True)
    put(engine, "bob", "b.txt", b"b", checksum=True)
    backup(engine, ["bob"])
    caught_up(local_env)
    first = lock_user(vault.clients, vault.settings, "bob")
    again = lock_user(vault.clients, vault.settings, "bob")
    assert first.points_locked == 1 and first.objects_checked == 3
    assert (again.points_locked, again.objects_checked, again.objects_extended) == (0, 0, 0)


def test_a_forged_newer_version_is_never_locked_and_never_restored(pair, tmp_path, local_env):
    engine, vault = pair
    put(engine, "carol", "ledger.xlsx", b"the real ledger", checksum=True)
    backup(engine, ["carol"])
    caught_up(local_env)
    content = naming.content_key(sha(b"the real ledger"))
    genuine = _first_version(vault, content)
    vault.s3.put_object(Bucket=vault.bucket, Key=content, Body=b"ransom note", ChecksumAlgorithm="SHA256")
    lock_user(vault.clients, vault.settings, "carol")
    forged = [v["VersionId"] for v in vault.s3.list_object_versions(Bucket=vault.bucket, Prefix=content)["Versions"]
              if v["VersionId"] != genuine][0]
    assert _retention(vault, content, genuine)[1] > _retention(vault, content, forged)[1]
    catalog = vault_catalog(vault.s3, vault.bucket, max_arrival_hours=vault.settings.max_arrival_hours)
    report = restore(vault.s3, vault.bucket, user="carol", to=str(tmp_path / "vault"), vault=catalog)
    assert (tmp_path / "vault" / "ledger.xlsx").read_bytes() == b"the real ledger" and report.ok
    # In the primary the forgery is the current version: the restore notices it, reads the version
    # that matches, and says so.
    engine.s3.put_object(Bucket=engine.settings.backup_bucket, Key=content, Body=b"ransom note")
    report = restore(engine.s3, engine.settings.backup_bucket, user="carol", to=str(tmp_path / "primary"))
    assert (tmp_path / "primary" / "ledger.xlsx").read_bytes() == b"the real ledger" and report.ok
    assert report.tampered and "tampered: 1 version(s) skipped" in report.tampered[0]


def test_a_written_over_manifest_reads_as_its_first_version_and_a_late_one_is_left_out(pair, local_env):
    engine, vault = pair
    put(engine, "dan", "notes.txt", b"monday's notes", checksum=True)
    record = backup(engine, ["dan"])
    caught_up(local_env)
    key = naming.manifest_key("dan", record["run_id"])
    first = _first_version(vault, key)
    vault.s3.put_object(Bucket=vault.bucket, Key=key, Body=b"forged")          # a second version
    # A snapshot that claims a run two weeks back, written now: it cannot be a backup of that day.
    old_run = naming.run_id_for(engine.clock() - timedelta(days=14))
    late_key = naming.manifest_key("dan", old_run)
    body = engine.s3.get_object(Bucket=engine.settings.backup_bucket, Key=key)["Body"].read()
    vault.s3.put_object(Bucket=vault.bucket, Key=late_key, Body=body)
    catalog = vault_catalog(vault.s3, vault.bucket, "dan", max_arrival_hours=48)
    assert [s.ref.version_id for s in catalog.snapshots] == [first]
    assert catalog.snapshots[0].tampered
    assert list(catalog.late) and "after its run" in catalog.late[list(catalog.late)[0]]
    report = lock_user(vault.clients, vault.settings, "dan")
    assert report.points_kept == 1 and len(report.late) == 1 and report.tampered == [key]


def test_compliance_locks_cannot_be_shortened(pair):
    engine, vault = pair
    vault.s3.put_object(Bucket=vault.bucket, Key="content/xx", Body=b"x")
    _, until = _retention(vault, "content/xx")
    with pytest.raises(ClientError) as refused:
        vault.s3.put_object_retention(Bucket=vault.bucket, Key="content/xx", Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(days=1)})
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        vault.s3.put_object_retention(Bucket=vault.bucket, Key="content/xx", Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)})
    vault.s3.put_object_retention(Bucket=vault.bucket, Key="content/xx", Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": until + timedelta(days=30)})
    assert _retention(vault, "content/xx")[1] == until + timedelta(days=30)


def test_a_lock_another_pass_extended_further_meanwhile_is_left_as_it_is(pair):
    """Two users' passes lock one shared content to different dates: the one that read the lock
    before the other extended it asks for a shorter date, which S3 refuses (403); it reads again
    and leaves the longer lock. A refusal the later read does not explain is still raised."""
    import dataclasses

    engine, vault = pair
    version = vault.s3.put_object(Bucket=vault.bucket, Key="content/yy", Body=b"y")["VersionId"]
    stale = vault.s3.head_object(Bucket=vault.bucket, Key="content/yy", VersionId=version)
    _, default = _retention(vault, "content/yy")
    vault.s3.put_object_retention(Bucket=vault.bucket, Key="content/yy", VersionId=version, Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": default + timedelta(days=30)})       # the other pass
    assert extend(vault.s3, vault.settings, "content/yy", version, default + timedelta(days=10), stale) is False
    assert _retention(vault, "content/yy")[1] == default + timedelta(days=30)
    governance = dataclasses.replace(vault.settings, lock_mode="GOVERNANCE")
    with pytest.raises(ClientError) as refused:
        extend(vault.s3, governance, "content/yy", version, default + timedelta(days=40))
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert _retention(vault, "content/yy") == ("COMPLIANCE", default + timedelta(days=30))


def test_lifecycle_removes_what_no_lock_holds_and_keeps_what_the_rules_keep(local_env):
    engine = make_engine(local_env, retention_days=3)
    vault = make_vault(local_env, engine.clock, retention=RetentionPolicy(retention_days=3), step_days=1)
    replicate_into(engine, vault)
    for day in range(8):
        s3_time(local_env, engine.clock())
        put(engine, "erin", "daily.txt", f"day {day}".encode(), checksum=True)
        put(engine, "erin", "constant.txt", b"never changes", checksum=True)
        backup(engine, ["erin"])
        caught_up(local_env)
        lock_user(vault.clients, vault.settings, "erin")
        vault.lifecycle()
        engine.clock.advance(days=1)
    s3_time(local_env, engine.clock())
    vault.lifecycle()
    held = {v["Key"]: v for v in vault.s3.list_object_versions(Bucket=vault.bucket, Prefix="content/")["Versions"]}
    constant = naming.content_key(sha(b"never changes"))
    assert constant in held                                       # referenced by every kept snapshot
    assert naming.content_key(sha(b"day 0")) not in held           # its snapshots expired, its lock ended
    assert naming.content_key(sha(b"day 7")) in held
