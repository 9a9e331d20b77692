"""Helpers for the vault tests: the vault's resources provisioned in its own account of the
emulator, and the emulator's S3 clock kept in step with a test's fake clock (a snapshot reaches the
vault within hours of its run, or it is "late": engine/vault.py)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from backup_cfn import aws, contract
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.settings import Clients
from backup_cfn.engine.vault import VaultSettings
from backup_cfn.local.provision import provision_vault, vault_lifecycle
from backup_cfn.local.s3_control import run_lifecycle, set_s3_clock


@dataclass
class Vault:
    env: object
    clients: Clients
    settings: VaultSettings
    outputs: dict
    replicated: set = field(default_factory=set)     # (key, ETag) already copied in: each version once

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


def copy_into_vault(engine, vault: Vault, prefix: str = "") -> int:
    """Every current object of the backup bucket under `prefix` written into the vault as the vault
    account, as replication would (new versions only, never a delete). A stand-in until the emulator
    replicates (issue-19-replication); returns the number copied."""
    copied = 0
    for page in engine.s3.get_paginator("list_objects_v2").paginate(Bucket=engine.settings.backup_bucket,
                                                                    Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if (key, item["ETag"]) in vault.replicated:
                continue
            vault.replicated.add((key, item["ETag"]))
            body = engine.s3.get_object(Bucket=engine.settings.backup_bucket, Key=key)["Body"].read()
            vault.s3.put_object(Bucket=vault.bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")
            copied += 1
    return copied
