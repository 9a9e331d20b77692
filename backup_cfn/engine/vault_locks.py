"""The lock extender: deduplication meets compliance-mode immutability (docs/vault.md).

A content object is needed for as long as any snapshot the retention rules keep references it,
often far past any fixed lock. So the vault applies the environment's retention rules itself and
keeps each kept snapshot (its manifest's first version and the genuine version of every content it
names) under a COMPLIANCE lock until the rules stop keeping it:

- `within`: run time + retention_days;
- the newest of an *ended* week, month or year: until that period leaves the keep_* window (while
  the period runs, its newest snapshot is the user's newest, kept by the next rule);
- a user's newest: at least `newest_horizon_days` (at most the retention) ahead, renewed by the
  daily pass for as long as it stays the newest (the last backups of a lost production account stay).

Each date gets a day's margin and is rounded up to a `step_days` grid, so an unchanged file's
content is re-locked once a step, not daily. Each user's grid has its own phase (from a hash of the
name): one shared grid would release every user's dropped content on the same day, so the vault's
excess over what the kept snapshots reference would peak before each grid date (1.115x measured);
spread over the step's days it stays near its mean (docs/vault.md). Compliance mode allows extending a lock and never
shortening it; this code only ever asks for a later date (it reads the current one first). Lifecycle
removes every version once no lock holds it (stack/vault_storage.py), so what is locked is exactly
what stays.

Journal segments (continuous protection, engine/journal.py) are recovery points too: a segment
captured at C serves the minutes from C until the user's next snapshot becomes their checkpoint,
so it is locked, with the content it names, until that snapshot's run + retention_days (while no
later snapshot exists: like a user's newest, ahead of the clock). With nightly runs that is within
the default retention a replica arrives with; after missed nights, it is longer.

Which snapshots are already locked how far is recorded per snapshot in the lock table, written
only after the snapshot and all its content are locked: a snapshot whose wanted date did not move
costs nothing, and content that an already-locked snapshot of the same user names is skipped.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import journal, naming
from backup_cfn.engine.contentstore import from_item, to_item
from backup_cfn.engine.hashing import sha256_of_stream, whole_object_sha256
from backup_cfn.engine.integrity import key_versions
from backup_cfn.engine.manifest import SnapshotRef, read_manifest
from backup_cfn.engine.retention import MONTHLY, NEWEST, PERIOD_RULES, WEEKLY, YEARLY, decide, period_index
from backup_cfn.engine.vault import VaultCatalog, VaultSettings, VaultSnapshot, vault_catalog

BATCH_GET = 100
EPOCH = date(1970, 1, 1)


@dataclass
class LockReport:
    users: int = 0
    points_kept: int = 0
    points_locked: int = 0            # snapshots whose lock was extended in this pass
    objects_checked: int = 0
    objects_extended: int = 0         # PutObjectRetention calls
    late: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    short: list[str] = field(default_factory=list)    # kept snapshots that could not be locked long enough

    def add(self, other: "LockReport") -> None:
        for name in ("users", "points_kept", "points_locked", "objects_checked", "objects_extended"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.late += other.late
        self.tampered += other.tampered
        self.short += other.short

    def to_json(self) -> dict:
        return {"users": self.users, "points_kept": self.points_kept, "points_locked": self.points_locked,
                "objects_checked": self.objects_checked, "objects_extended": self.objects_extended,
                "late": len(self.late), "tampered": len(self.tampered), "short": self.short[:20]}


# --- how long the rules keep each snapshot ------------------------------------------------------------------

def period_end(run: datetime, rule: str, count: int) -> datetime:
    """When the newest snapshot of `run`'s period leaves the window of the last `count` periods."""
    if rule == WEEKLY:
        monday = run.date() - timedelta(days=run.isoweekday() - 1)
        return datetime.combine(monday + timedelta(weeks=count), datetime.min.time(), tzinfo=timezone.utc)
    if rule == MONTHLY:
        month = run.year * 12 + run.month - 1 + count
        return datetime(month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    if rule == YEARLY:
        return datetime(run.year + count, 1, 1, tzinfo=timezone.utc)
    raise ValueError(f"not a period rule: {rule!r}")


def on_grid(moment: datetime, step_days: int, phase: int = 0) -> datetime:
    """The first midnight (UTC) on or after `moment` whose day number less `phase` is a multiple of the step."""
    days = (moment.astimezone(timezone.utc).date() - EPOCH).days
    if moment.astimezone(timezone.utc).time() != datetime.min.time():
        days += 1
    days = -(-(days - phase) // step_days) * step_days + phase
    return datetime.combine(EPOCH + timedelta(days=days), datetime.min.time(), tzinfo=timezone.utc)


def grid_phase(user: str, step_days: int) -> int:
    """The user's own day on the step grid: stable (a hash of the name), spread evenly over many users."""
    return int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % step_days


def lock_date(until: datetime, user: str, settings: VaultSettings) -> datetime:
    """What a recovery point the rules need until `until` is locked until: the margin, then the user's grid."""
    return on_grid(until + timedelta(days=settings.margin_days), settings.step_days,
                   grid_phase(user, settings.step_days))


def wanted_locks(snapshots: list[VaultSnapshot], now: datetime, settings: VaultSettings, *,
                 rounded: bool = True) -> dict[SnapshotRef, datetime]:
    """Each snapshot the rules keep now, with the date it is to be locked until (`rounded`: with
    the margin, on the step grid; else the date the rules need, no later)."""
    policy = settings.retention
    by_key = {s.ref.key: s.ref for s in snapshots}
    decision = decide([(s.ref.user, s.ref.run_id, s.ref.key) for s in snapshots], now, policy)
    wanted = {}
    for kept in decision.kept:
        run = naming.run_time(kept[1])
        until = run + timedelta(days=policy.retention_days)
        for rule in decision.reasons[kept]:
            if rule == NEWEST:
                horizon = min(settings.newest_horizon_days, policy.retention_days)
                until = max(until, now + timedelta(days=horizon))
            elif rule in PERIOD_RULES and period_index(now, rule) > period_index(run, rule):
                until = max(until, period_end(run, rule, policy.periods(rule)))
        wanted[by_key[kept[2]]] = lock_date(until, kept[0], settings) if rounded else until
    return wanted


def wanted_segment_locks(snapshots: list[VaultSnapshot], segments: list[journal.FirstSegment], now: datetime,
                         settings: VaultSettings, *, rounded: bool = True) -> dict[SnapshotRef, datetime]:
    """Each journal segment a restore inside the window can still need, with the date to lock it
    until: its user's first snapshot whose replay starts after the segment's capture (from then on
    that snapshot is the checkpoint, engine/pointintime.py) leaves the window at its run +
    retention_days; without one yet, now + the newest horizon (renewed by the daily pass).
    Segments no minute of the window needs any more are left to lifecycle."""
    policy = settings.retention
    starts: dict[str, list[datetime]] = {}
    for snapshot in snapshots:
        starts.setdefault(snapshot.ref.user, []).append(journal.replay_start(snapshot.ref.run_id))
    wanted = {}
    for segment in segments:
        ref = segment.ref
        later = [start for start in starts.get(ref.user, []) if start > ref.captured_at]
        if later:
            until = min(later) + timedelta(seconds=contract.JOURNAL_REPLAY_MARGIN_SECONDS) + timedelta(
                days=policy.retention_days)
            if until <= now:
                continue
        else:
            until = max(ref.captured_at + timedelta(days=policy.retention_days),
                        now + timedelta(days=min(settings.newest_horizon_days, policy.retention_days)))
        point = SnapshotRef(ref.user, naming.run_id_for(ref.captured_at), ref.key, size=ref.size,
                            version_id=segment.version_id)
        wanted[point] = lock_date(until, ref.user, settings) if rounded else until
    return wanted


# --- the lock records ---------------------------------------------------------------------------------------

def read_records(dynamodb, table: str, keys: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for start in range(0, len(keys), BATCH_GET):
        request = {table: {"Keys": [{contract.VAULT_LOCK_KEY: {"S": k}} for k in keys[start:start + BATCH_GET]],
                           "ConsistentRead": True}}
        while request:
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                record = from_item(item)
                found[record[contract.VAULT_LOCK_KEY]] = record
            request = response.get("UnprocessedKeys") or None
    return found


def locked_until(record: dict | None, ref: SnapshotRef) -> datetime | None:
    if not record or record.get("version_id") != ref.version_id:
        return None
    return naming.parse_iso(record["locked_until"])


def write_record(dynamodb, table: str, ref: SnapshotRef, until: datetime, objects: int) -> None:
    dynamodb.put_item(TableName=table, Item=to_item({
        contract.VAULT_LOCK_KEY: ref.key, "version_id": ref.version_id, "user": ref.user, "run_id": ref.run_id,
        "locked_until": naming.iso(until), "objects": objects,
        contract.VAULT_LOCK_TTL_ATTRIBUTE: int((until + timedelta(days=1)).timestamp())}))


# --- locking one object version -----------------------------------------------------------------------------

def lock_of(head: dict) -> tuple[str | None, datetime | None]:
    """(mode, retain-until) from a HeadObject answer. S3 includes them only for a caller allowed
    s3:GetObjectRetention (S3 User Guide, "Object Lock considerations", permissions for viewing lock
    information): the lock function's role is, and the permission test declares it."""
    until = head.get("ObjectLockRetainUntilDate")
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=timezone.utc)
    return head.get("ObjectLockMode"), until


def extend(s3, settings: VaultSettings, key: str, version_id: str, until: datetime, head: dict | None = None) -> bool:
    """Lock one version until `until` in the vault's mode, unless it already is: True when a
    PutObjectRetention was sent. Never asks for an earlier date (the current one is read first).

    Content is shared: two users' passes (threads of one pass, or the arrival's and the daily pass
    at once) may lock the same version to different dates. When the other asked for a later date
    between our read and our request, S3 refuses ours as a shortening (403 AccessDenied: S3 User
    Guide, "Locking objects with Object Lock", a compliance period "can't be shortened"); the
    version is then read again, and is done when its lock already reaches `until`."""
    head = head if head is not None else s3.head_object(Bucket=settings.bucket, Key=key, VersionId=version_id)
    mode, current = lock_of(head)
    if current is not None and current >= until and mode == settings.lock_mode:
        return False
    if current is not None and current > until:
        until = current          # a governance trial turning compliance keeps the later date
    try:
        s3.put_object_retention(Bucket=settings.bucket, Key=key, VersionId=version_id,
                                Retention={"Mode": settings.lock_mode, "RetainUntilDate": until})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "AccessDenied":
            raise
        mode, current = lock_of(s3.head_object(Bucket=settings.bucket, Key=key, VersionId=version_id))
        if current is None or current < until or mode != settings.lock_mode:
            raise
        return False
    return True


def _is_content(s3, bucket: str, key: str, sha256: str, head: dict) -> bool:
    stored = whole_object_sha256(head)
    if stored is None:     # no whole-object checksum (a multipart upload): read it
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])["Body"]
        with body:
            stored, _ = sha256_of_stream(body)
    return stored == sha256


def genuine_version(s3, bucket: str, sha256: str) -> tuple[str, dict] | None:
    """The version of a content key whose bytes are the content (S3's stored SHA-256, else a
    re-hash), with its HeadObject answer: the current one when it is (one request, the usual case),
    else the oldest that is; None when no version is."""
    key = naming.content_key(sha256)
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        if _is_content(s3, bucket, key, sha256, head):
            return head["VersionId"], head
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (*contract.MISSING_OBJECT_CODES, "405", "MethodNotAllowed"):
            raise       # a delete marker on top (lifecycle's, after the default lock) answers 404 or 405
    for version in key_versions(s3, bucket, key):
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=version.version_id, ChecksumMode="ENABLED")
        if _is_content(s3, bucket, key, sha256, head):
            return version.version_id, head
    return None


# --- one user's pass, and every user's -------------------------------------------------------------------------

def lock_user(clients, settings: VaultSettings, user: str, *, catalog: VaultCatalog | None = None,
              now: datetime | None = None) -> LockReport:
    """Lock every snapshot of `user` the rules keep, as far as they keep it."""
    s3, now = clients.s3, now or settings.now()
    catalog = catalog if catalog is not None else vault_catalog(s3, settings.bucket, user,
                                                               max_arrival_hours=settings.max_arrival_hours)
    report = LockReport(users=1, late=[f"{ref.key}: {why}" for ref, why in catalog.late.items()],
                        tampered=[s.ref.key for s in catalog.tampered()])
    wanted = wanted_locks(catalog.snapshots, now, settings)
    segments = journal.first_segments(s3, settings.bucket, user)
    report.late += [f"{segment.ref.key}: {why}" for segment in segments
                    if (why := segment.lateness(settings.max_arrival_hours))]
    report.tampered += [segment.ref.key for segment in segments if segment.versions > 1]
    wanted.update(wanted_segment_locks(catalog.snapshots, [s for s in segments
                                                           if not s.lateness(settings.max_arrival_hours)],
                                       now, settings))
    report.points_kept = len(wanted)
    records = read_records(clients.dynamodb, settings.lock_table, [ref.key for ref in wanted])
    done = {ref: locked_until(records.get(ref.key), ref) for ref in wanted}
    manifests: dict[SnapshotRef, set[str]] = {}

    def hashes(ref: SnapshotRef) -> set[str]:
        if ref not in manifests:
            read = journal.read_segment if ref.key.startswith(contract.JOURNAL_PREFIX) else read_manifest
            manifests[ref] = read(s3, settings.bucket, ref.key, ref.version_id).hashes()
        return manifests[ref]

    for ref, until in sorted(wanted.items(), key=lambda item: item[0].run_id, reverse=True):
        if done[ref] is not None and done[ref] >= until:
            continue
        # Content an already-locked snapshot of this user names is locked at least that long.
        cover = next((other for other, reached in sorted(done.items(), key=lambda i: i[0].run_id, reverse=True)
                      if other != ref and reached is not None and reached >= until), None)
        needed = hashes(ref) - (hashes(cover) if cover is not None else set())
        ok = _lock_point(s3, settings, ref, until, needed, report)
        if ok:
            write_record(clients.dynamodb, settings.lock_table, ref, until, len(hashes(ref)))
            done[ref] = until
            report.points_locked += 1
    return report


def _lock_point(s3, settings: VaultSettings, ref: SnapshotRef, until: datetime, needed: set[str],
                report: LockReport) -> bool:
    def lock_content(sha256: str) -> tuple[bool, bool]:
        found = genuine_version(s3, settings.bucket, sha256)
        if found is None:
            return False, False
        version_id, head = found
        return True, extend(s3, settings, naming.content_key(sha256), version_id, until, head)

    with ThreadPoolExecutor(max_workers=settings.threads) as pool:
        results = list(pool.map(lock_content, sorted(needed)))
    missing = [sha for sha, (found, _) in zip(sorted(needed), results) if not found]
    report.objects_checked += len(needed) + 1
    report.objects_extended += sum(1 for _, sent in results if sent)
    report.objects_extended += extend(s3, settings, ref.key, ref.version_id, until)
    if missing:
        report.short.append(f"{ref.key}: {len(missing)} content object(s) with no version matching their "
                            f"SHA-256 (e.g. {missing[0][:16]}): not locked until {naming.iso(until)}")
        return False
    return True


def lock_all(clients, settings: VaultSettings, *, now: datetime | None = None) -> LockReport:
    """The daily pass: every user, from one versioned listing of manifests/."""
    now = now or settings.now()
    catalog = vault_catalog(clients.s3, settings.bucket, max_arrival_hours=settings.max_arrival_hours)
    by_user: dict[str, VaultCatalog] = {}
    for snapshot in catalog.snapshots:
        by_user.setdefault(snapshot.ref.user, VaultCatalog()).snapshots.append(snapshot)
    for ref, reason in catalog.late.items():
        by_user.setdefault(ref.user, VaultCatalog()).late[ref] = reason
    report = LockReport()
    # Users side by side: most name a few new contents a day, so one user's own pool is mostly idle.
    with ThreadPoolExecutor(max_workers=settings.threads) as pool:
        for user_report in pool.map(lambda item: lock_user(clients, settings, item[0], catalog=item[1], now=now),
                                    sorted(by_user.items())):
            report.add(user_report)
    return report


def user_of_arrival(event: dict) -> str | None:
    """The user whose manifest an EventBridge "Object Created" event announces (None: not a manifest)."""
    key = ((event.get("detail") or {}).get("object") or {}).get("key", "")
    parsed = naming.parse_manifest_key(unquote_plus(key))
    return parsed[0] if parsed else None

