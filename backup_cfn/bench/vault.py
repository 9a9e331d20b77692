"""Scenario 6's vault: the bench rig's backups replicated into a vault in its own account of the
emulator, locked by the lock extender and aged by S3 lifecycle, all in the scenario's simulated
time (the emulator's S3 clock follows it: backup_cfn/local/patches/s3_objectlock.py).

Each simulated day: replication catches up, the lock pass runs (as the vault's daily schedule
would), S3's clock moves on and the vault's lifecycle runs; the vault's bytes (every version it
holds) are measured. At the end every snapshot the rules keep is restored from the vault alone and
compared, file by file, with what the source held on its day.
"""
from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from backup_cfn import contract
from backup_cfn.engine.integrity import ContentVersions
from backup_cfn.engine.manifest import read_manifest
from backup_cfn.engine.restore import restore_to_directory
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.vault import VaultSettings, vault_catalog
from backup_cfn.engine.vault_locks import lock_all


@dataclass
class VaultRig:
    env: object
    clients: object
    settings: VaultSettings
    bucket: str

    def day(self, moment_after) -> dict:
        """Replication caught up, the lock pass at the rig's clock, S3 a little later, lifecycle."""
        from backup_cfn.local.s3_control import run_lifecycle, set_s3_clock
        from backup_cfn.local.server import wait_for_replication

        wait_for_replication(self.env.endpoint_url, timeout=600)
        report = lock_all(self.clients, self.settings)
        set_s3_clock(self.env.endpoint_url, moment_after)
        lifecycle = run_lifecycle(self.env.endpoint_url, self.env.vault.account_id, self.bucket)
        return {"points_kept": report.points_kept, "objects_extended": report.objects_extended,
                "short": len(report.short), "late": len(report.late), **lifecycle}

    def stored_bytes(self) -> tuple[int, int, int]:
        """(bytes, versions, bytes of them under manifests/) the vault holds: every version,
        current or not."""
        total = count = manifests = 0
        for page in self.clients.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                total += version.get("Size", 0)
                count += 1
                if version["Key"].startswith(contract.MANIFEST_PREFIX):
                    manifests += version.get("Size", 0)
        return total, count, manifests


def make_vault_rig(env, rig, policy: RetentionPolicy, *, step_days: int) -> VaultRig:
    """The vault's bucket (default lock as the template sets it, with this step), lock table and
    lifecycle, in the vault account; the rig's backup bucket replicating into it."""
    from backup_cfn import aws
    from backup_cfn.local.provision import provision_vault, vault_lifecycle

    default_days = policy.retention_days + contract.VAULT_LOCK_MARGIN_DAYS
    outputs = provision_vault(lambda service, region: aws.vault_client(env, service, region),
                              prefix=f"b{uuid.uuid4().hex[:10]}", region=env.vault.region, retention_days=default_days,
                              lifecycle=vault_lifecycle(default_days))
    bucket = outputs[contract.OUTPUT_VAULT_BUCKET]
    account = aws.client(env, "sts").get_caller_identity()["Account"]
    rig.clients.s3.put_bucket_replication(Bucket=rig.settings.backup_bucket, ReplicationConfiguration={
        "Role": f"arn:aws:iam::{account}:role/bench-replication",
        "Rules": [{"ID": "ReplicateNewBackupsToVault", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                   "Destination": {"Bucket": f"arn:aws:s3:::{bucket}", "Account": env.vault.account_id,
                                   "EncryptionConfiguration": {"ReplicaKmsKeyID": outputs[contract.OUTPUT_VAULT_KEY_ARN]}}}]})
    settings = VaultSettings(bucket=bucket, lock_table=outputs[contract.OUTPUT_VAULT_LOCK_TABLE], retention=policy,
                             stack_name="bench-vault", clock=rig.clock, step_days=step_days)
    return VaultRig(env, aws.vault_engine_clients(env), settings, bucket)


def restore_kept(vault: VaultRig, history: dict[str, dict], kept: list[tuple[str, str, str]]) -> dict:
    """Every kept snapshot restored from the vault alone and compared with its day's source files."""
    s3 = vault.clients.s3
    catalog = vault_catalog(s3, vault.bucket, max_arrival_hours=vault.settings.max_arrival_hours)
    refs = {(ref.user, ref.run_id): ref for ref in catalog.refs}
    reader = ContentVersions(s3, vault.bucket, versioned=True)
    restored = files = 0
    problems: list[str] = []
    for user, run_id, _ in kept:
        ref = refs.get((user, run_id))
        if ref is None:
            problems.append(f"{user}@{run_id}: not in the vault")
            continue
        manifest = read_manifest(s3, vault.bucket, ref.key, ref.version_id)
        expected = {key[len(user) + 1:]: spec for key, spec in history[run_id].items() if key.startswith(f"{user}/")}
        with tempfile.TemporaryDirectory(prefix="bench-vault-") as directory:
            report = restore_to_directory(s3, vault.bucket, manifest, Path(directory), reader=reader)
            problems += report.problems[:3]
            for path, spec in expected.items():
                target = Path(directory) / path
                if not target.is_file() or target.read_bytes() != spec.data():
                    problems.append(f"{user}@{run_id}:{path}: not restored as it was")
            files += len(expected)
        restored += 1
    return {"snapshots": len(kept), "restored": restored, "files": files, "problems": problems[:20],
            "problems_total": len(problems)}
