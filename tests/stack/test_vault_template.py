"""The vault's promises, as its template and the primary's replication rule state them
(docs/vault.md): production may only write new replicas; nobody deletes or bypasses; the key is
the vault account's; lifecycle removes only what no lock holds."""
from __future__ import annotations

import json

import pytest

from backup_cfn import contract
from backup_cfn.config import load_environment

from template_helpers import VAULT_ENV_NAMES, as_list, disaster_recovery, primary, props, resources, role_actions, statements


def _statements_for(document: dict, sid: str) -> dict:
    return next(s for s in statements(document) if s.get("Sid") == sid)


@pytest.mark.parametrize("env_name", VAULT_ENV_NAMES)
def test_production_replicates_into_the_vault_account_without_delete_markers(env_name):
    env = load_environment(env_name)
    template = primary(env_name)
    [rule] = props(template, "BackupBucket")["ReplicationConfiguration"]["Rules"]
    assert rule["Destination"]["Account"] == env.vault.account_id
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    actions = {a for s in statements(props(template, "ReplicationRolePolicy")["PolicyDocument"])
               for a in as_list(s["Action"])}
    assert "s3:ReplicateObject" in actions and "s3:ReplicateDelete" not in actions
    # With a vault, production's operator role reads nothing of the disaster-recovery copy.
    restore = role_actions(template, "RestoreRole")
    document = json.dumps(props(template, "RestoreRole")["Policies"])
    assert contract.PARAM_REPLICA_BUCKET_ARN not in document and contract.PARAM_REPLICA_KEY_ARN not in document
    assert "s3:GetObject" in restore


@pytest.mark.parametrize("env_name", VAULT_ENV_NAMES)
def test_the_vault_bucket_lets_production_write_new_replicas_and_nothing_else(env_name):
    env = load_environment(env_name)
    template = disaster_recovery(env_name)
    bucket = props(template, "VaultBucket")
    assert bucket["BucketName"] == env.vault.bucket_name
    assert bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE", "Days": env.retention_days + contract.VAULT_LOCK_MARGIN_DAYS}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    document = props(template, "VaultBucketPolicy")["PolicyDocument"]
    production = f"arn:${{AWS::Partition}}:iam::{env.account_id}:root"
    for statement in statements(document):
        if statement["Effect"] == "Allow" and production in json.dumps(statement["Principal"]):
            assert set(as_list(statement["Action"])) <= {"s3:ReplicateObject", "s3:ReplicateTags",
                                                          "s3:GetBucketVersioning"}, statement["Sid"]
            assert "aws:PrincipalArn" in json.dumps(statement["Condition"])
    writes = _statements_for(document, "ProductionReplicationWritesReplicas")
    assert len(writes["Resource"]) == len(contract.REPLICATED_PREFIXES)
    for sid, action in (("DenyReplicatedDeletes", "s3:ReplicateDelete"),
                        ("NobodyWritesOrDeletesDirectly", "s3:DeleteObjectVersion"),
                        ("NobodyWritesOrDeletesDirectly", "s3:BypassGovernanceRetention"),
                        ("DenyReplicasUnderOtherKeys", "s3:ReplicateObject")):
        statement = _statements_for(document, sid)
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and action in as_list(statement["Action"])


@pytest.mark.parametrize("env_name", VAULT_ENV_NAMES)
def test_the_vault_key_is_the_vault_accounts_and_production_only_encrypts_through_s3(env_name):
    env = load_environment(env_name)
    policy = props(disaster_recovery(env_name), "VaultKey")["KeyPolicy"]
    production = [s for s in statements(policy) if env.account_id in json.dumps(s.get("Principal", {}))]
    [statement] = production
    assert set(as_list(statement["Action"])) == {"kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt"}
    condition = json.dumps(statement["Condition"])
    assert "kms:ViaService" in condition and "aws:PrincipalArn" in condition and env.vault.bucket_name in condition
    admin = _statements_for(policy, "AccountAdministersKeyAndDelegatesToIam")
    assert admin["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}


@pytest.mark.parametrize("env_name", VAULT_ENV_NAMES)
def test_lifecycle_expires_only_through_locks_and_the_lock_role_cannot_delete(env_name):
    template = disaster_recovery(env_name)
    rules = {r["Id"]: r for r in props(template, "VaultBucket")["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireCurrentVersions"]["ExpirationInDays"] == load_environment(env_name).retention_days + 1
    assert rules["RemoveUnlockedVersions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    for role in resources(template, "AWS::IAM::Role"):
        actions = role_actions(template, role)
        assert not any(a.startswith("s3:Delete") or a == "s3:BypassGovernanceRetention" or a == "s3:PutObject"
                       for a in actions), role
    assert "s3:PutObjectRetention" in role_actions(template, "VaultLockFunctionRole")
    assert "s3:PutObjectRetention" not in role_actions(template, "VaultRestoreRole")
