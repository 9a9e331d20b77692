"""Helpers for the vault tests: the vault's resources provisioned in its own account of the
emulator, and the emulator's S3 clock kept in step with a test's fake clock (a snapshot reaches the
vault within hours of its run, or it is "late": engine/vault.py)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from backup_cfn import aws, contract
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.settings import Clients
from backup_cfn.engine.vault import VaultSettings
from backup_cfn.local.provision import provision_vault, vault_lifecycle
from backup_cfn.local.s3_control import run_lifecycle, set_s3_clock
from backup_cfn.local.server import wait_for_replication


@dataclass
class Vault:
    env: object
    clients: Clients
    settings: VaultSettings
    outputs: dict

    @property
    def s3(self):
        return self.clients.s3

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    def lifecycle(self) -> dict:
        return run_lifecycle(self.env.endpoint_url, self.env.vault.account_id, self.bucket)


def make_vault(env, clock, *, retention: RetentionPolicy | None = None, lifecycle: bool = True, **overrides) -> Vault:
    retention = retention or RetentionPolicy()
    outputs = provision_vault(lambda service, region: aws.vault_client(env, service, region),
                              prefix=f"v{uuid.uuid4().hex[:10]}", region=env.vault.region,
                              retention_days=retention.retention_days,
                              lifecycle=vault_lifecycle(retention.retention_days) if lifecycle else None)
    settings = VaultSettings(bucket=outputs[contract.OUTPUT_VAULT_BUCKET],
                             lock_table=outputs[contract.OUTPUT_VAULT_LOCK_TABLE], retention=retention,
                             stack_name="test-vault", clock=clock, threads=4).with_(**overrides)
    return Vault(env, aws.vault_engine_clients(env), settings, outputs)


def s3_time(env, moment) -> None:
    """The emulator's S3 clock at `moment` (None: real time)."""
    set_s3_clock(env.endpoint_url, moment)


def replicate_into(engine, vault: Vault) -> None:
    """The engine's backup bucket replicates into the vault as the template's rule with a vault
    says (stack/storage.py): another account, the vault's key, no delete markers."""
    account = aws.client(vault.env, "sts").get_caller_identity()["Account"]
    engine.s3.put_bucket_replication(Bucket=engine.settings.backup_bucket, ReplicationConfiguration={
        "Role": f"arn:aws:iam::{account}:role/{engine.settings.stack_name}-replication",
        "Rules": [{"ID": "ReplicateNewBackupsToVault", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Disabled"},
                   "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                   "Destination": {"Bucket": f"arn:aws:s3:::{vault.bucket}", "Account": vault.env.vault.account_id,
                                   "EncryptionConfiguration": {
                                       "ReplicaKmsKeyID": vault.outputs[contract.OUTPUT_VAULT_KEY_ARN]}}}]})


def caught_up(env) -> dict:
    """Wait for the emulator's replication to have copied everything written so far."""
    return wait_for_replication(env.endpoint_url)
