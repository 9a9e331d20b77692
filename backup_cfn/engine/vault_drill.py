"""The vault's restore drill: the primary's drill (engine/drill.py), reading the vault as a restore
from it would (snapshots by first version, content by version), with the vault's own findings —
manifests written over, snapshots that arrived late — reported as problems, so the drill alarm in
the vault account fires on tampering too."""
from __future__ import annotations

from backup_cfn.engine import naming
from backup_cfn.engine.catalog import newest_per_user
from backup_cfn.engine.drill import DrillReport, drill_snapshots
from backup_cfn.engine.integrity import ContentVersions
from backup_cfn.engine.vault import VaultSettings, vault_catalog


def run_vault_drill(clients, settings: VaultSettings, *, drill_id: str | None = None, users: int | None = None,
                    trigger: str = "schedule", seed: int | None = None) -> DrillReport:
    now = settings.now()
    catalog = vault_catalog(clients.s3, settings.bucket, max_arrival_hours=settings.max_arrival_hours)
    return drill_snapshots(ContentVersions(clients.s3, settings.bucket, versioned=True),
                           newest_per_user(catalog.refs), settings.drill_users if users is None else users,
                           drill_id=drill_id or naming.run_id_for(now), trigger=trigger, now=now, seed=seed,
                           threads=settings.threads, problems=catalog.problems())
