"""The review against the emulator, as an operator runs it: the emulator's change sets carry no
values, so every value is computed from the deployed template and parameters; the forecast reads
the deployed backups. The change of the issue: retention 60 → 30 days and a governance lock, in a
temporary environments file, with backups taken on past days so the next prune has something to
delete; the forecast's figures are then checked against the collector's own dry run."""
from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from click.testing import CliRunner
from rich.console import Console

import cli
from backup_cfn.engine.pruner import prune
from backup_cfn.ops import demo_data
from backup_cfn.local.runner import run_in_process
from backup_cfn.ops.run import run_backup
from backup_cfn.ops.target import connect

USERS = 4
# Three runs fall out of a 30-day window, none out of 60 days; the newest of them (31 days ago) is the
# checkpoint before the new window, kept for restores at its first minutes: two runs go.
DAYS_AGO = (45, 38, 31, 24, 10, 1)
ACCEPT = "retention-shortened:PrunerFunction"


def run(environments, *args):
    # stdout and stderr apart: with --json, stdout must hold the document alone.
    return CliRunner().invoke(cli.cli, ["--environments", str(environments), *args], obj={},
                              env={"COLUMNS": "250"})


def shorter_retention(environments) -> None:
    text = environments.read_text()
    environments.write_text(text.replace("[env.local]\n", '[env.local]\nretention_days = 30\n'
                                                          'object_lock_mode = "governance"\n'))


@pytest.fixture
def backed_up(environments, local_env):
    """The local environment deployed, with backups of USERS users on each of DAYS_AGO."""
    deployed = run(environments, "deploy", "--env", "local", "--yes")
    assert deployed.exit_code == 0, deployed.output
    target = connect(local_env)
    today = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
    quiet = Console(file=open(os.devnull, "w"))
    for day, days_ago in enumerate(DAYS_AGO, start=1):
        demo_data.generate(target.clients.s3, target.settings.source_bucket, users=USERS, day=day)
        run_backup(target, runner=run_in_process, console=quiet, moment=today - timedelta(days=days_ago))
    return target


def test_the_review_of_a_shorter_retention_and_a_governance_lock(environments, backed_up, local_env):
    shorter_retention(environments)
    result = run(environments, "diff", "--env", "local")

    assert result.exit_code == 3, result.output
    out = result.output
    # Each changed value, computed (the emulator gives none), as a reviewer reads it.
    assert "ReplicaBucket (AWS::S3::Bucket) modify:\n  LifecycleConfiguration.Rules[Id=CleanUpDeletedVersionsAndUploads]" \
           ".NoncurrentVersionExpiration.NoncurrentDays: 60 → 30 [computed]\n" in out
    assert "  ObjectLockConfiguration: (none) → {ObjectLockEnabled: Enabled, Rule: {DefaultRetention: {Days: 30, " \
           "Mode: GOVERNANCE}}} [computed]\n" in out
    assert "PrunerFunction (AWS::Lambda::Function) modify:\n  Environment.Variables.RETENTION_DAYS: 60 → 30 " \
           "[computed]\n" in out
    # A removed rule, without the Id its path names, folded at 120 characters.
    assert "  LifecycleConfiguration.Rules[Id=LongLivedContentToInfrequentAccess]: {ObjectSizeGreaterThan: 131072, " \
           "Prefix: content/, Status: Enabled, Transitions: [{StorageClass: STANDARD_IA, Transition… → (none) " \
           "[computed]\n" in out
    # The forecast: the replica's deleted versions go sooner, and the prune line. (Object Lock itself
    # is on already, without a default retention, on every bucket holding data: CT.S3.PR.9.)
    assert "object-lock-enabled" not in out
    assert "warning lifecycle-shortened:ReplicaBucket: lifecycle rule CleanUpDeletedVersionsAndUploads" in out
    assert f"blocking {ACCEPT}: retention 60 → 30 days: the next prune will delete {2 * USERS} of " \
           f"{len(DAYS_AGO) * USERS} snapshot(s) ({2 * USERS} only because of this change) of {USERS} user(s)" in out
    assert f"Error: refusing the change set for backup-cfn-local: the forecast blocks it with {ACCEPT}. If that " \
           f"is intended, rerun with --accept {ACCEPT}" in out

    # The same review as one document, and its prune figures against the collector's dry run.
    result = run(environments, "diff", "--env", "local", "--json")
    assert result.exit_code == 3, result.stderr

    document = json.loads(result.stdout)   # stdout is the document alone; progress went to stderr
    primary = next(s for s in document["stacks"] if s["label"] == "primary")
    (finding,) = [f for f in primary["forecast"] if f["id"] == ACCEPT]
    assert finding["blocks"] and document["outcome"] == "blocked" and document["exit_code"] == 3
    # The collector itself, on the new retention, a day later (past the grace period of content the
    # test's backups touched just now): it deletes exactly what the forecast said.
    target = connect(dataclasses.replace(local_env, retention_days=30))
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    report = prune(target.clients, target.settings.with_(clock=lambda: later), dry_run=True)
    figures = finding["data"]
    assert len(report.manifests_expired) == figures["snapshots_deleted"] == 2 * USERS
    assert report.manifests_total == figures["snapshots_total"]
    assert len(report.content_deleted) == figures["content_objects_deleted"] > 0
    assert report.bytes_deleted == figures["content_bytes_deleted"]
    values = {(c["logical_id"], p["path"]): p for c in primary["changes"] for p in c["properties"]}
    retention = values[("PrunerFunction", "Environment.Variables.RETENTION_DAYS")]
    assert (retention["before"], retention["after"], retention["source"]) == ("60", "30", "computed")


def test_accepting_the_finding_by_id_lets_diff_and_deploy_through(environments, backed_up):
    shorter_retention(environments)
    accepted = run(environments, "diff", "--env", "local", "--accept", ACCEPT)
    assert accepted.exit_code == 2, accepted.output
    assert f"accepted {ACCEPT}" in accepted.output

    # Through deploy (kept for review: moto cannot update a bucket's Object Lock in place).
    kept = run(environments, "deploy", "--env", "local", "--no-execute", "--accept", ACCEPT, "--accept", "nothing:Here")
    assert kept.exit_code == 2, kept.output
    assert kept.output.count("change set kept for review: https://") == 2
    assert "--accept nothing:Here matched no finding of the forecast" in kept.output


def test_diff_exit_codes_for_changes_and_errors_with_a_document_each_time(environments, local_env):
    first = run(environments, "diff", "--env", "local", "--json")
    assert first.exit_code == 2, first.stderr
    document = json.loads(first.stdout)
    assert (document["schema_version"], document["outcome"], document["command"]) == (1, "changes", "diff")
    (replica,) = document["stacks"]
    assert replica["change_set"]["type"] == "CREATE"
    assert {c["logical_id"] for c in replica["changes"]} >= {"ReplicaBucket", "ReplicaKey"}
    # Every statement of the new key policy is a permission gained.
    assert any(p["subject"] == "ReplicaKey key policy" and p["verb"] == "gains"
               for c in replica["changes"] for p in c["permissions"])

    text = environments.read_text().replace('account_id = "123456789012"', 'account_id = "999999999999"')
    environments.write_text(text)
    failed = run(environments, "diff", "--env", "local", "--json")
    assert failed.exit_code == 1
    error = json.loads(failed.stdout)
    assert error["outcome"] == "error" and "deploys to 999999999999" in error["error"]
    assert failed.stderr.count("Error:") == 1


def test_a_name_the_new_stack_would_take_that_exists_blocks_before_anything_is_created(environments, local_env):
    kms = boto3.client("kms", region_name=local_env.replica_region, endpoint_url=local_env.endpoint_url)
    kms.create_alias(AliasName="alias/backup-cfn-local-replica", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    result = run(environments, "diff", "--env", "local")

    assert result.exit_code == 3, result.output
    assert "blocking name-taken:ReplicaKeyAlias: a AWS::KMS::Alias named 'alias/backup-cfn-local-replica' exists " \
           "already in this account and region" in result.output
    assert "--accept name-taken:ReplicaKeyAlias" in result.output


def test_deploy_json_needs_yes_or_no_execute(environments):
    result = run(environments, "deploy", "--env", "local", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert "Error: --json needs --yes or --no-execute: there is no prompt in a run read by a machine" in result.stderr
