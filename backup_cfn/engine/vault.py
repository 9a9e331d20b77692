"""The vault as its readers see it: settings, and the snapshots it holds.

The vault receives only what replication brings and removes only what lifecycle may (docs/vault.md),
so it is read by version:

- a snapshot is the *first* version of its manifest key (a later version was written over it);
- a snapshot written later than `max_arrival_hours` after its run (or before it) is **late**: a
  backup reaches the vault within hours of its run, so a late one claims a past it was not part of
  (whoever holds the production replication role can write one). Late snapshots are reported and
  left out of restores, drills and the locks unless asked for.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Mapping

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.errors import MissingSetting
from backup_cfn.engine.integrity import first_versions
from backup_cfn.engine.manifest import SnapshotRef
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.settings import utc_now

# A clock a little ahead of the run's own time is not a forgery.
EARLY_TOLERANCE = timedelta(hours=1)


@dataclass(frozen=True)
class VaultSettings:
    bucket: str
    lock_table: str = ""
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    stack_name: str = ""
    lock_mode: str = "COMPLIANCE"
    drill_users: int = 10
    max_arrival_hours: int = contract.VAULT_MAX_ARRIVAL_HOURS
    step_days: int = contract.VAULT_LOCK_STEP_DAYS
    margin_days: int = contract.VAULT_LOCK_MARGIN_DAYS
    newest_horizon_days: int = contract.VAULT_NEWEST_HORIZON_DAYS
    threads: int = 8
    clock: Callable[[], datetime] = field(default=utc_now, compare=False, repr=False)

    def now(self) -> datetime:
        return self.clock()

    def with_(self, **changes) -> "VaultSettings":
        return replace(self, **changes)


def _retention(values: Mapping[str, str]) -> RetentionPolicy:
    return RetentionPolicy(int(values.get(contract.ENV_RETENTION_DAYS) or 60),
                           int(values.get(contract.ENV_KEEP_WEEKLY) or 0),
                           int(values.get(contract.ENV_KEEP_MONTHLY) or 0),
                           int(values.get(contract.ENV_KEEP_YEARLY) or 0))


def vault_settings_from_environ(environ: Mapping[str, str] | None = None) -> VaultSettings:
    """Inside the vault's functions, from the variables its template sets."""
    environ = os.environ if environ is None else environ
    if not environ.get(contract.ENV_VAULT_BUCKET):
        raise MissingSetting(contract.ENV_VAULT_BUCKET, "environment variable")
    return VaultSettings(bucket=environ[contract.ENV_VAULT_BUCKET],
                         lock_table=environ.get(contract.ENV_VAULT_LOCK_TABLE, ""),
                         retention=_retention(environ), stack_name=environ.get(contract.ENV_STACK_NAME, ""),
                         lock_mode=environ.get(contract.ENV_VAULT_LOCK_MODE, "COMPLIANCE"),
                         drill_users=int(environ.get(contract.ENV_DRILL_USERS) or 10))


def vault_settings_from_outputs(outputs: Mapping[str, str], retention: RetentionPolicy, *, stack_name: str = "",
                                drill_users: int = 10, lock_mode: str = "COMPLIANCE") -> VaultSettings:
    """On an operator's machine, from the vault stack's outputs."""
    if not outputs.get(contract.OUTPUT_VAULT_BUCKET):
        raise MissingSetting(contract.OUTPUT_VAULT_BUCKET, "stack output")
    return VaultSettings(bucket=outputs[contract.OUTPUT_VAULT_BUCKET],
                         lock_table=outputs.get(contract.OUTPUT_VAULT_LOCK_TABLE, ""), retention=retention,
                         stack_name=stack_name, drill_users=drill_users, lock_mode=lock_mode.upper())


@dataclass(frozen=True)
class VaultSnapshot:
    ref: SnapshotRef              # version_id: the manifest's first version
    written: datetime             # when that version was written (its LastModified)
    versions: int                 # more than one: written over (the later ones are ignored)

    @property
    def tampered(self) -> bool:
        return self.versions > 1

    def lateness(self, max_arrival_hours: int | None) -> str | None:
        """Why this snapshot cannot be the backup its key claims, or None."""
        if max_arrival_hours is None:
            return None
        run = naming.run_time(self.ref.run_id)
        written = self.written if self.written.tzinfo else self.written.replace(tzinfo=run.tzinfo)
        if written > run + timedelta(hours=max_arrival_hours):
            return (f"written {(written - run).total_seconds() / 3600:.0f} h after its run "
                    f"(a backup arrives within {max_arrival_hours} h)")
        if written < run - EARLY_TOLERANCE:
            return f"written {(run - written).total_seconds() / 3600:.0f} h before its run"
        return None


@dataclass
class VaultCatalog:
    """The vault's snapshots: trusted ones (sorted by user, then run), late ones with the reason."""
    snapshots: list[VaultSnapshot] = field(default_factory=list)
    late: dict[SnapshotRef, str] = field(default_factory=dict)

    @property
    def refs(self) -> list[SnapshotRef]:
        return [s.ref for s in self.snapshots]

    def tampered(self) -> list[VaultSnapshot]:
        return [s for s in self.snapshots if s.tampered]

    def problems(self) -> list[str]:
        """What verify and the drills report: written-over manifests and late ones."""
        lines = [f"{s.ref.key}: written over ({s.versions} versions); its first version is the snapshot"
                 for s in self.tampered()]
        lines += [f"{ref.key}: {reason}; left out" for ref, reason in sorted(self.late.items(), key=lambda i: i[0].key)]
        return lines


def vault_catalog(s3, bucket: str, user: str | None = None, *, max_arrival_hours: int | None = None,
                  include_late: bool = False) -> VaultCatalog:
    """Every snapshot in the vault (one user's when given), from one versioned listing."""
    prefix = naming.manifest_prefix(user) if user is not None else contract.MANIFEST_PREFIX
    catalog = VaultCatalog()
    for key, first in first_versions(s3, bucket, prefix).items():
        parsed = naming.parse_manifest_key(key)
        if not parsed or (user is not None and parsed[0] != user):
            continue
        snapshot = VaultSnapshot(SnapshotRef(parsed[0], parsed[1], key, size=first.size, version_id=first.version_id),
                                 first.written, first.versions)
        reason = snapshot.lateness(max_arrival_hours)
        if reason and not include_late:
            catalog.late[snapshot.ref] = reason
        else:
            catalog.snapshots.append(snapshot)
    catalog.snapshots.sort(key=lambda s: (s.ref.user, s.ref.run_id))
    return catalog
