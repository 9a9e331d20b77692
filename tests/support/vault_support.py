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

    @property
    def aliases(self) -> dict[str, str]:
        """The emulator's names of the vault's resources -> their logical IDs in the vault template."""
        return {self.bucket: "VaultBucket", self.settings.lock_table: "VaultLockTable",
                self.outputs[contract.OUTPUT_VAULT_KEY_ARN]: "VaultKey"}

    def as_role(self, role: str, recorder) -> Clients:
        """The vault's clients acting as one of its roles, every call recorded under it."""
        make = lambda service: recorder.attach(aws.vault_client(self.env, service), role, self.aliases)  # noqa: E731
        return Clients(s3=make("s3"), dynamodb=make("dynamodb"))


def make_vault(env, clock, *, retention: RetentionPolicy | None = None, lifecycle: bool = True,
               default_lock_days: int | None = None, **overrides) -> Vault:
    """`default_lock_days`: the bucket's default retention, when a test wants it shorter than the
    rules' retention (so that the lock function has locks to extend)."""
    retention = retention or RetentionPolicy()
    outputs = provision_vault(lambda service, region: aws.vault_client(env, service, region),
                              prefix=f"v{uuid.uuid4().hex[:10]}", region=env.vault.region,
                              retention_days=default_lock_days or retention.retention_days,
                              lifecycle=vault_lifecycle(retention.retention_days) if lifecycle else None)
    settings = VaultSettings(bucket=outputs[contract.OUTPUT_VAULT_BUCKET],
                             lock_table=outputs[contract.OUTPUT_VAULT_LOCK_TABLE], retention=retention,
                             stack_name="test-vault", clock=clock, threads=4).with_(**overrides)
    return Vault(env, aws.vault_engine_clients(env), settings, outputs)


def s3_time(env, moment) -> None:
    """The emulator's S3 clock at `moment` (None: real time)."""
    set_s3_clock(env.endpoint_url, moment)


def replicate_into(engine, vault: Vault, *, besides_the_replica: bool = False) -> None:
    """The engine's backup bucket replicates into the vault as the template's rule with a vault
    says (stack/storage.py): another account, the vault's key, no delete markers. With
    `besides_the_replica`, the provisioned rule to the replica stays too (two destinations)."""
    account = aws.client(vault.env, "sts").get_caller_identity()["Account"]
    rules = engine.s3.get_bucket_replication(Bucket=engine.settings.backup_bucket)["ReplicationConfiguration"][
        "Rules"] if besides_the_replica else []
    engine.s3.put_bucket_replication(Bucket=engine.settings.backup_bucket, ReplicationConfiguration={
        "Role": f"arn:aws:iam::{account}:role/{engine.settings.stack_name}-replication",
        "Rules": rules + [{
            "ID": "ReplicateNewBackupsToVault", "Priority": len(rules) + 1, "Status": "Enabled",
            "Filter": {"Prefix": ""}, "DeleteMarkerReplication": {"Status": "Disabled"},
            "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
            "Destination": {"Bucket": f"arn:aws:s3:::{vault.bucket}", "Account": vault.env.vault.account_id,
                            "EncryptionConfiguration": {"ReplicaKmsKeyID": vault.outputs[contract.OUTPUT_VAULT_KEY_ARN]}}}]})


def caught_up(env) -> dict:
    """Wait for the emulator's replication to have copied everything written so far."""
    return wait_for_replication(env.endpoint_url)
