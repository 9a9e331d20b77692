"""What the next garbage collection deletes under a shorter retention (fewer days, or fewer weekly,
monthly or yearly snapshots kept), by the collector's own rules (engine.pruner.split_by_retention
over engine.manifest.list_manifests, engine.pruner.journal_cut over the journal): the snapshots and
journal segments that fall out (each user's newest is kept whatever its age), and the content that
only those reference, with its size from the manifests and segments. Read calls only."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from rich.filesize import decimal

from backup_cfn.engine import journal
from backup_cfn.engine.errors import ManifestError
from backup_cfn.engine.manifest import list_manifests, read_manifest
from backup_cfn.engine.pruner import journal_cut, split_by_retention
from backup_cfn.engine.retention import PERIOD_RULES, RetentionPolicy, decide

READ_THREADS = 8


@dataclass(frozen=True)
class PruneForecast:
    snapshots_total: int
    expired: tuple[tuple[str, str, str], ...]      # (user, run_id, key) the next prune deletes
    only_because: int                               # of those, kept under the old retention
    content_objects: int
    content_bytes: int
    unreadable: int                                 # kept manifests unreadable: no content deleted
    journal_segments: int = 0                       # journal segments the next prune deletes

    @property
    def users(self) -> int:
        return len({user for user, _, _ in self.expired})

    def figures(self) -> dict:
        runs = sorted({run for _, run, _ in self.expired})
        return {"snapshots_total": self.snapshots_total, "snapshots_deleted": len(self.expired),
                "snapshots_deleted_only_because_of_this_change": self.only_because, "users": self.users,
                "first_run": runs[0] if runs else None, "last_run": runs[-1] if runs else None,
                "content_objects_deleted": 0 if self.unreadable else self.content_objects,
                "content_bytes_deleted": 0 if self.unreadable else self.content_bytes,
                "journal_segments_deleted": self.journal_segments,
                "unreadable_kept_snapshots": self.unreadable}

    def summary(self, old: RetentionPolicy, new: RetentionPolicy, bucket: str) -> str:
        change = describe_change(old, new)
        if not self.expired:
            return (f"{change}: the next prune deletes no snapshot (none of the {self.snapshots_total} in "
                    f"s3://{bucket} falls outside the new rules)")
        runs = sorted({run for _, run, _ in self.expired})
        content = (f"no content ({self.unreadable} kept snapshot(s) unreadable: the collector then deletes none)"
                   if self.unreadable else
                   f"{self.content_objects} content object(s), {decimal(self.content_bytes)}, that no kept "
                   "snapshot references")
        journal = (f", {self.journal_segments} journal segment(s) (the minutes before the new window stop being "
                   "restorable)" if self.journal_segments else "")
        return (f"{change}: the next prune will delete {len(self.expired)} of "
                f"{self.snapshots_total} snapshot(s) ({self.only_because} only because of this change) of "
                f"{self.users} user(s), runs {runs[0]} to {runs[-1]}{journal}, and {content}; "
                "restore can no longer reach those snapshots")


def describe_change(old: RetentionPolicy, new: RetentionPolicy) -> str:
    """"retention 60 → 30 days, keep_monthly 12 → 6": what of the rules changed."""
    parts = [f"retention {old.retention_days} → {new.retention_days} days"] \
        if old.retention_days != new.retention_days else []
    parts += [f"keep_{rule} {old.periods(rule)} → {new.periods(rule)}" for rule in PERIOD_RULES
              if old.periods(rule) != new.periods(rule)]
    return ", ".join(parts) or f"retention {new.retention_days} days (unchanged)"


def keeps_less(old: RetentionPolicy, new: RetentionPolicy) -> bool:
    return new.retention_days < old.retention_days or any(new.periods(r) < old.periods(r) for r in PERIOD_RULES)


def forecast_prune(s3, bucket: str, *, old: RetentionPolicy, new: RetentionPolicy, now: datetime) -> PruneForecast:
    manifests = list_manifests(s3, bucket)
    decision = decide(manifests, now, new)
    kept, expired = decision.kept, decision.expired
    _, expired_before = split_by_retention(manifests, now, old)
    # The journal, by the collector's own cut (engine.pruner.journal_cut).
    kept_segments, expired_segments = journal_cut(decision, journal.list_segments(s3, bucket),
                                                  {user for user, _, _ in manifests})
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        kept_entries = list(pool.map(lambda entry: _entries(s3, bucket, entry[2]), kept))
        expired_entries = list(pool.map(lambda entry: _entries(s3, bucket, entry[2]), expired))
        kept_entries += list(pool.map(lambda ref: _segment_entries(s3, bucket, ref.key), kept_segments))
        expired_entries += list(pool.map(lambda ref: _segment_entries(s3, bucket, ref.key), expired_segments))
    referenced = {sha for entries in kept_entries if entries is not None for sha in entries}
    freed: dict[str, int] = {}
    for entries in expired_entries:
        for sha, size in (entries or {}).items():
            if sha not in referenced:
                freed[sha] = size
    return PruneForecast(snapshots_total=len(manifests), expired=tuple(expired),
                         only_because=len(set(expired) - set(expired_before)), content_objects=len(freed),
                         content_bytes=sum(freed.values()),
                         unreadable=sum(1 for entries in kept_entries if entries is None),
                         journal_segments=len(expired_segments))


def _segment_entries(s3, bucket: str, key: str) -> dict[str, int] | None:
    try:
        return {c.sha256: c.size for c in journal.read_segment(s3, bucket, key).changes if c.sha256}
    except ManifestError:
        return None


def _entries(s3, bucket: str, key: str) -> dict[str, int] | None:
    """sha256 -> size of one snapshot; None when it cannot be read (as the collector counts it)."""
    try:
        return {entry.sha256: entry.size for entry in read_manifest(s3, bucket, key).entries.values()}
    except ManifestError:
        return None
