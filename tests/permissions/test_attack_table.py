"""The attacker's side (permissions/attacks.py, docs/vault.md "Threat model"): every destructive
request against each copy of the backups, per principal, as AWS would decide it, with S3 Object
Lock's rules on top. The targets of issue 19: with a vault, the production administrator and root
can do one thing to the disaster-recovery copy (stop replicating new objects into it, which the
vault account alarms on); no function role, the restore role, the replication role, a client of
the source bucket or a trusted account can do anything to it."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from backup_cfn.config import load_environment
from backup_cfn.permissions.attacks import ADMIN, FUNCTION_ROLES, ROOT, TRUSTED, VAULT_ROLES, ROWS, attack_table
from backup_cfn.permissions.model import PRIMARY, REPLICA, SOURCE_CLIENT, build_model, committed_templates
from backup_cfn.permissions.objectlock import BucketLock, applies
from backup_cfn.stack.render import render
from backup_cfn.stack.template import build_dr_template, build_template

DR = "disaster-recovery"
NOBODY = (*FUNCTION_ROLES, "RestoreRole", "ReplicationRole", SOURCE_CLIENT, TRUSTED, *VAULT_ROLES)


@pytest.fixture(scope="module")
def prod():
    return attack_table(build_model(load_environment("prod")))


def test_with_a_vault_production_can_only_stop_replicating_into_it(prod):
    for principal in (ADMIN, ROOT):
        assert prod.allowed(principal, DR) == ["stop replicating into it"], principal
    for principal in NOBODY:
        assert prod.allowed(principal, DR) == [], principal
    tried = {row.title for row in ROWS}
    assert {a.row for a in prod.attempts if a.copy == DR} == tried
    refused = {a.row: a.how for a in prod.attempts if a.principal == ADMIN and a.copy == DR and not a.allowed}
    assert "NobodyWritesOrDeletesDirectly" in refused["delete a locked content version"]
    assert "cross-account" in refused["disable its key"]
    assert "DenyReplicatedDeletes" in next(a.how for a in prod.attempts if a.principal == "ReplicationRole"
                                           and a.row == "send delete markers into it")


def test_on_the_primary_compliance_stops_version_deletes_even_for_root(prod):
    for principal in (ADMIN, ROOT):
        allowed = prod.allowed(principal, "primary")
        assert "delete a locked content version" not in allowed and "shorten a content version's lock" not in allowed
        assert "delete the bucket policy" in allowed       # what the vault exists for
    assert prod.allowed("WorkerFunctionRole", "primary") == []      # manifests are written once
    assert prod.allowed("PrunerFunctionRole", "primary") == ["hide content behind a delete marker"]
    for principal in ("RestoreRole", SOURCE_CLIENT, TRUSTED, "ReplicationRole", *VAULT_ROLES):
        assert prod.allowed(principal, "primary") == [], principal


def test_the_one_account_layout_is_what_an_administrator_of_that_account_can_destroy():
    """dev keeps the replica in its own account (docs/vault.md says what that survives): its
    administrator can destroy the replica in every way but suspending versioning."""
    table = attack_table(build_model(load_environment("dev")))
    allowed = table.allowed(ADMIN, DR)
    assert "delete a locked content version" in allowed and "disable its key" in allowed
    assert "delete its stack" in allowed and "suspend versioning" not in allowed
    assert table.allowed("ReplicationRole", DR) == ["send delete markers into it"]
    for principal in (*FUNCTION_ROLES, "RestoreRole", SOURCE_CLIENT, TRUSTED):
        assert table.allowed(principal, DR) == [], principal


def test_a_trusted_account_reads_and_destroys_nothing():
    env = dataclasses.replace(load_environment("prod"), trusted_account_ids=("999988887777",))
    templates = {PRIMARY: json.loads(render(build_template(env))), REPLICA: json.loads(render(build_dr_template(env)))}
    table = attack_table(build_model(env, templates))
    assert table.allowed(TRUSTED, "primary") == [] and table.allowed(TRUSTED, DR) == []


def _vault_statement(templates: dict, sid: str) -> dict:
    document = templates[REPLICA]["Resources"]["VaultBucketPolicy"]["Properties"]["PolicyDocument"]
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


def test_the_table_catches_a_vault_that_lets_the_production_account_in():
    """A statement granting the production account the vault bucket (what a careless "allow the
    source account" would be): its administrator can then change the bucket's protections; the
    locks, whose rules no policy can lift, still hold every version."""
    env = load_environment("prod")
    templates = copy.deepcopy(committed_templates(env))
    document = templates[REPLICA]["Resources"]["VaultBucketPolicy"]["Properties"]["PolicyDocument"]
    writes = _vault_statement(templates, "ProductionReplicationWritesReplicas")
    document["Statement"].append({"Sid": "SourceAccountAdministers", "Effect": "Allow", "Principal": writes["Principal"],
                                  "Action": "s3:*", "Resource": [
                                      {"Fn::GetAtt": ["VaultBucket", "Arn"]},
                                      {"Fn::Join": ["", [{"Fn::GetAtt": ["VaultBucket", "Arn"]}, "/*"]]}]})
    table = attack_table(build_model(env, templates))
    allowed = table.allowed(ADMIN, DR)
    assert {"remove the default retention", "replace the bucket policy", "delete the bucket policy"} <= set(allowed)
    refused = {a.row: a.how for a in table.attempts if a.principal == ADMIN and a.copy == DR and not a.allowed}
    assert "locked version" in refused["a lifecycle rule that expires everything"]
    assert "COMPLIANCE" in refused["delete a locked content version"]


def test_object_locks_rules():
    """S3 User Guide, "Locking objects with Object Lock" and "Object Lock considerations"."""
    compliance, governance, none = BucketLock(True, "COMPLIANCE"), BucketLock(True, "GOVERNANCE"), BucketLock(True, None)
    for bypass in (False, True):
        assert applies("delete-version", compliance, bypass).refused            # root included
        assert applies("shorten-retention", compliance, bypass).refused
    assert applies("delete-version", governance, False).refused
    assert not applies("delete-version", governance, True).refused
    assert not applies("delete-version", none, False).refused
    assert applies("suspend-versioning", none, False).refused
    assert not applies("lifecycle", compliance, False).refused
    assert applies("lifecycle", BucketLock(True, "COMPLIANCE", locks_cover_kept=True), False).refused
