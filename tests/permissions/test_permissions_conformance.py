"""Permission conformance: every AWS call each principal makes, evaluated against the committed
templates with AWS's evaluation logic (backup_cfn/permissions). The emulator enforces no IAM, key or
bucket policy, so this is where a call AWS would refuse fails the suite.

Recorded here, on the emulator, as each principal: the initiator, the worker (and the event source
mapping polling for it; a job split over invocations too), the dead-letter consumer (and its
mapping), the pruner, the drill, through their real handlers; each operator command under the
restore role it is documented to use (docs/permissions.md); a client uploading reports to the
source bucket (demo-data). Declared, not recorded (the emulator cannot make them): the operator's
DescribeStacks and `run`'s Invoke of the initiator. Also evaluated: what AWS services do for the
stack (permissions/services.py), and every call the handlers made through `backup()` in the other
engine tests of this session (engine_support.SUITE_CALLS).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import pytest

from backup_cfn import contract
from backup_cfn.config import load_environment
from backup_cfn.engine import naming, runs
from backup_cfn.engine.history import compare
from backup_cfn.ops import demo_data
from backup_cfn.ops.drill import drill_event
from backup_cfn.ops.find import find
from backup_cfn.ops.ls import listing
from backup_cfn.ops.prune import run_prune
from backup_cfn.engine import restore_jobs
from backup_cfn.local.runner import drain_restore_queue
from backup_cfn.ops import restore_service
from backup_cfn.ops.restore import restore, restore_many
from backup_cfn.ops.runs import runs_table
from backup_cfn.ops.selection import snapshot
from backup_cfn.ops.target import DeployedEnvironment
from backup_cfn.ops.verify import run_verify
from backup_cfn.permissions.conformance import check_calls, check_services
from backup_cfn.permissions.model import PRIMARY_STACK, REPLICA_STACK, SOURCE_CLIENT, build_model, committed_templates
from backup_cfn.permissions.recorder import Call, Recorder
from backup_cfn.permissions.requests import TRANSLATIONS
from backup_cfn.local import server
from backup_cfn.local.capture_source import drain as drain_capture_queue
from backup_cfn.local.runner import drain_queue, invoke_initiator

from backup_cfn.engine.vault import vault_catalog
from backup_cfn.engine.verify import verify_vault
from vault_support import make_vault, replicate_into
from engine_support import (
    DEAD_LETTER,
    INITIATOR,
    OPERATOR,
    PRUNER,
    SUITE_CALLS,
    WORKER,
    context,
    make_engine,
    sha,
)

DRILL = "DrillFunctionRole"
CAPTURE = "CaptureFunctionRole"
RESTORER = "RestorerFunctionRole"

ENVS = ("dev", "prod", "local")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def recorded(emulator_endpoint, tmp_path_factory):
    """One life of the system on the emulator, every call recorded under the principal making it."""
    env = replace(load_environment("local"), endpoint_url=emulator_endpoint)
    # Small multipart copies, so the worker's path for content over 5 GiB runs too.
    engine = make_engine(env, multipart_threshold=5 * MiB, multipart_part_size=5 * MiB)
    # The vault in its own account, replicated into besides the replica: its principals' calls are
    # evaluated against the vault layout (prod, local), the replica's against the one-account one (dev).
    vault = make_vault(env, engine.clock, default_lock_days=1, max_arrival_hours=None)
    replicate_into(engine, vault, besides_the_replica=True)
    calls, replica_calls, vault_calls = Recorder(), Recorder(), Recorder()
    source, backup_bucket = engine.settings.source_bucket, engine.settings.backup_bucket
    uploader = engine.as_role(SOURCE_CLIENT, calls)

    demo_data.generate(uploader.s3, source, users=3, day=1)
    uploader.s3.put_object(Bucket=source, Key="client-0001/tagged/report.pdf", Body=b"tagged report",
                           Tagging="owner=alice&project=audit")
    # Continuous protection: the uploads' events through the capture queue's mapping and function.
    drain_capture_queue(engine.as_role(CAPTURE, calls), engine.settings)
    # Captured only after the night's run, so the worker's path for content over 5 GiB runs too.
    large = bytes(range(256)) * (6 * MiB // 256)
    uploader.s3.put_object(Bucket=source, Key="client-0002/large/archive.bin", Body=large)

    def run_backup():
        moment = engine.clock()
        invoke_initiator(engine.as_role(INITIATOR, calls), engine.settings, moment, None)
        drain_queue(engine.as_role(WORKER, calls), engine.settings, run_id=naming.run_id_for(moment), threads=2,
                    dead_letter_clients=engine.as_role(DEAD_LETTER, calls))

    run_backup()
    first_run = naming.run_id_for(engine.clock())
    tags = engine.s3.get_object_tagging(Bucket=backup_bucket, Key=naming.content_key(sha(b"tagged report")))["TagSet"]
    engine.clock.advance(days=1)
    demo_data.generate(uploader.s3, source, users=3, day=2)
    drain_capture_queue(engine.as_role(CAPTURE, calls), engine.settings)
    run_backup()
    second_run = naming.run_id_for(engine.clock())

    # A user too large for one invocation: each chunk hands on the rest (a part written, a
    # continuation sent) and the last merges the parts (split_over_invocations, below).
    for i in range(60):
        uploader.s3.put_object(Bucket=source, Key=f"client-big/reports/{i:03d}.pdf", Body=b"big report %d" % i)
    engine.clock.advance(hours=1)
    split_moment = engine.clock()
    invoke_initiator(engine.as_role(INITIATOR, calls), engine.settings, split_moment, ["client-big"])
    split = split_over_invocations(engine.as_role(WORKER, calls), engine.settings)
    split_job = runs.get_user_job(engine.clients.dynamodb, engine.settings, naming.run_id_for(split_moment), "client-big")

    # A job whose every delivery was killed, as SQS leaves it: its message in the dead-letter queue,
    # which the consumer takes and records FAILED, closing the run PARTIAL.
    engine.clock.advance(hours=1)
    dead_moment = engine.clock()
    invoke_initiator(engine.as_role(INITIATOR, calls), engine.settings, dead_moment, ["client-0003"])
    setup_sqs = engine.as_role("setup", Recorder()).sqs
    [message] = setup_sqs.receive_message(QueueUrl=engine.settings.job_queue_url, MaxNumberOfMessages=1,
                                          WaitTimeSeconds=1)["Messages"]
    setup_sqs.send_message(QueueUrl=engine.settings.dead_letter_queue_url, MessageBody=message["Body"])
    setup_sqs.delete_message(QueueUrl=engine.settings.job_queue_url, ReceiptHandle=message["ReceiptHandle"])
    drain_queue(engine.as_role(WORKER, calls), engine.settings, threads=1,
                dead_letter_clients=engine.as_role(DEAD_LETTER, calls))
    dead_run = runs.get_run(engine.clients.dynamodb, engine.settings, naming.run_id_for(dead_moment))

    # The weekly restore drill, through the drill function's handler, as its role.
    from handlers import drill as drill_handler, runtime as handler_runtime

    handler_runtime.configure(engine.as_role(DRILL, calls), engine.settings)
    drilled = drill_handler.handler(drill_event(engine.clock(), 3), context("drill"))

    operator = engine.as_role(OPERATOR, calls)
    target = DeployedEnvironment(env, operator, engine.settings, engine.outputs)
    restored = tmp_path_factory.mktemp("restored")
    restore(operator.s3, backup_bucket, user="client-0001", to=str(restored))
    # A point in time: the snapshot finished by then plus the journal.
    restore(operator.s3, backup_bucket, user="client-0002", to=str(tmp_path_factory.mktemp("at")),
            at=engine.clock())
    restore(operator.s3, backup_bucket, user="client-0002", to=f"s3://{source}/restored/")
    restore_many(operator.s3, backup_bucket, users=["client-0001", "client-0002"],
                 to=str(tmp_path_factory.mktemp("restored-many")))
    run_verify(target, sample_percent=100)
    listing(snapshot(operator.s3, backup_bucket, "client-0001", run_id=second_run), None)
    find(target, "*.pdf")
    find(target, "reports/*", user="client-0002")
    compare(snapshot(operator.s3, backup_bucket, "client-0001", run_id=first_run),
            snapshot(operator.s3, backup_bucket, "client-0001", run_id=second_run))
    runs_table(target)
    runs_table(target, user="client-0001")
    run_prune(target, dry_run=True)

    # The replica, as the emulator's S3 replication fills it; then the disaster-recovery restore from it alone.
    replica = engine.outputs[contract.OUTPUT_REPLICA_BUCKET]
    assert server.wait_for_replication(env.endpoint_url)["failed"] == 0
    replica_operator = engine.as_role(OPERATOR, replica_calls, region=env.replica_region)
    restore(replica_operator.s3, replica, user="client-0003", to=str(tmp_path_factory.mktemp("from-replica")))
    # Disaster recovery: every user at once, from the replica alone, to a folder and to a bucket.
    restore_many(replica_operator.s3, replica, users=None, to=str(tmp_path_factory.mktemp("from-replica-all")),
                 source="replica")
    restore_many(replica_operator.s3, replica, users=None, to=f"s3://{source}/dr/", source="replica")
    # Disaster recovery by the stack: the operator records the restore and enqueues a job per user;
    # the restore function (and its dead-letter mapping) restores each from the replica (the one-account
    # layout's: recorded with the replica's calls; from the backup bucket below, for every layout).
    restore_id = restore_service.start(target, users=None, source="replica", source_s3=replica_operator.s3,
                                       to=f"s3://{source}/by-stack/", run_id=None, at=None, path_prefix=None)
    restore_dead_letters = engine.outputs[contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL]
    dead_letter_arn = setup_sqs.get_queue_attributes(QueueUrl=restore_dead_letters,
                                                     AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    restorer_settings = engine.settings.with_(restore_dead_letter_queue_arn=dead_letter_arn)
    drain_restore_queue(engine.as_role(RESTORER, replica_calls), restorer_settings, restore_dead_letters, threads=2)
    # A duplicate of a finished job, dead-lettered: the same function finds its result and keeps it.
    setup_sqs.send_message(QueueUrl=restore_dead_letters, MessageBody=restore_jobs.RestoreJob(
        restore_id, "client-0001", "replica", source, "by-stack").body())
    drain_restore_queue(engine.as_role(RESTORER, replica_calls), restorer_settings, restore_dead_letters, threads=1)
    by_stack = restore_jobs.get_restore(operator.dynamodb, engine.settings, restore_id)
    # A minute restored by the stack: the restore function reads the journal too (issue 20).
    engine.clock.advance(minutes=1)
    restore_service.start(target, users=["client-0002"], source="backup", source_s3=operator.s3,
                          to=f"s3://{source}/by-stack-at/", run_id=None, at=engine.clock(), path_prefix=None)
    drain_restore_queue(engine.as_role(RESTORER, calls), restorer_settings, restore_dead_letters, threads=1)
    restore_service.reports(target, restore_id)

    # The vault's own life, as its roles: the lock function's daily pass (and a user's arrival),
    # the weekly drill, and every restore and check from the vault alone.
    from handlers import vault_drill, vault_lock

    handler_runtime.configure_vault(vault.as_role("VaultLockFunctionRole", vault_calls), vault.settings)
    vault_lock.handler({}, context("vault-lock"))
    vault_lock.handler({"detail-type": "Object Created", "detail": {"object": {
        "key": naming.manifest_key("client-0001", second_run)}}}, context("vault-lock"))
    handler_runtime.configure_vault(vault.as_role("VaultDrillFunctionRole", vault_calls), vault.settings)
    vault_drilled = vault_drill.handler({"users": 2}, context("vault-drill"))
    reader = vault.as_role("VaultRestoreRole", vault_calls)
    catalog = vault_catalog(reader.s3, vault.bucket)
    restore(reader.s3, vault.bucket, user="client-0001", to=str(tmp_path_factory.mktemp("from-vault")), vault=catalog)
    restore_many(reader.s3, vault.bucket, users=None, to=str(tmp_path_factory.mktemp("from-vault-all")),
                 source="vault", vault=catalog)
    vault_checked = verify_vault(reader, vault.settings, sample_percent=100)
    vault_calls.declare("VaultRestoreRole", "cloudformation", "DescribeStacks", {"StackName": env.vault.stack_name},
                        env.vault.region, {env.vault.stack_name: REPLICA_STACK})
    vault_calls.declare("VaultRestoreRole", "lambda", "Invoke", {"FunctionName": "vault-drill"}, env.vault.region,
                        {"vault-drill": "VaultDrillFunction"})
    # HeadObject answers a version's lock only to a caller allowed s3:GetObjectRetention (S3 User
    # Guide, "Object Lock considerations"): the lock function and verify read locks that way.
    for role in ("VaultLockFunctionRole", "VaultRestoreRole"):
        vault_calls.declare(role, "s3", "GetObjectRetention", {"Bucket": vault.bucket, "Key": "manifests/u/x.json.gz",
                                                               "VersionId": "v"}, env.vault.region, vault.aliases)

    # Garbage collection past the retention, through the pruner's handler.
    from handlers import pruner, runtime

    engine.clock.advance(days=engine.settings.retention_days + 2)
    runtime.configure(engine.as_role(PRUNER, calls), engine.settings)
    collected = pruner.handler({}, context("pruner"))

    aliases = {**engine.aliases, env.stack_name: PRIMARY_STACK, env.replica_stack_name: REPLICA_STACK}
    calls.declare(OPERATOR, "cloudformation", "DescribeStacks", {"StackName": env.stack_name}, env.region, aliases)
    replica_calls.declare(OPERATOR, "cloudformation", "DescribeStacks", {"StackName": env.replica_stack_name},
                          env.replica_region, aliases)
    for function, logical in (("initiator", "InitiatorFunction"), ("drill", "DrillFunction")):
        calls.declare(OPERATOR, "lambda", "Invoke", {"FunctionName": f"backup-cfn-local-{function}"}, env.region,
                      {**aliases, f"backup-cfn-local-{function}": logical})
    return {"calls": calls.distinct(), "replica_calls": replica_calls.distinct(), "vault_calls": vault_calls.distinct(),
            "tags": tags, "collected": collected, "engine": engine, "drill": drilled, "split": split,
            "split_job": split_job, "dead_run": dead_run, "vault_drill": vault_drilled, "vault_verify": vault_checked,
            "by_stack": by_stack}


def split_over_invocations(worker_clients, settings) -> int:
    """Deliver the job queue's messages to the worker, each invocation's remaining time counting
    down 40 s per look (a deterministic stand-in for Lambda's clock: about 20 looks before the
    reserve), until the queue is empty. Returns the number of invocations."""
    from backup_cfn.engine.worker import Delivery, handle_delivery

    invocations = 0
    while invocations < 50:
        messages = worker_clients.sqs.receive_message(QueueUrl=settings.job_queue_url, MaxNumberOfMessages=1,
                                                      AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        if not messages:
            return invocations
        [message] = messages
        looks = itertools.count()
        delivery = Delivery(message["Body"], message["ReceiptHandle"],
                            int(message["Attributes"]["ApproximateReceiveCount"]),
                            remaining_ms=lambda: max(0, 900_000 - 40_000 * next(looks)))
        invocations += 1
        handle_delivery(worker_clients, settings, delivery)
        worker_clients.sqs.delete_message(QueueUrl=settings.job_queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the split job did not finish in 50 invocations")


def _operations(calls: list[Call], principal: str) -> set[str]:
    return {f"{c.service}.{c.operation}" for c in calls if c.principal == principal}


def test_the_scenario_exercises_every_principal_and_path(recorded):
    calls = recorded["calls"]
    assert {"s3.ListObjectsV2", "dynamodb.TransactWriteItems", "dynamodb.BatchGetItem",
            "sqs.SendMessageBatch"} <= _operations(calls, INITIATOR)
    assert {"s3.CopyObject", "s3.CreateMultipartUpload", "s3.UploadPartCopy", "s3.CompleteMultipartUpload",
            "s3.HeadObject", "s3.GetObject", "s3.PutObject", "dynamodb.TransactWriteItems",
            "sqs.ReceiveMessage", "sqs.DeleteMessage"} <= _operations(calls, WORKER)
    assert {"s3.DeleteObjects", "s3.DeleteObject", "dynamodb.Scan", "dynamodb.DeleteItem"} <= _operations(calls, PRUNER)
    assert {"s3.CopyObject", "dynamodb.BatchGetItem", "dynamodb.Query", "dynamodb.Scan",
            "cloudformation.DescribeStacks", "lambda.Invoke"} <= _operations(calls, OPERATOR)
    assert {"s3.PutObject", "s3.DeleteObjects"} <= _operations(calls, SOURCE_CLIENT)
    assert {"s3.ListObjectsV2", "s3.GetObject", "dynamodb.PutItem"} <= _operations(calls, DRILL)
    assert {"s3.GetObject", "s3.CopyObject", "s3.PutObject",
            "dynamodb.UpdateItem", "sqs.ReceiveMessage", "sqs.DeleteMessageBatch",
            "sqs.GetQueueAttributes"} <= _operations(calls, CAPTURE)
    journal_reads = [c for c in calls if c.principal in (WORKER, OPERATOR, PRUNER, RESTORER)
                     and c.operation == "ListObjectsV2" and str(c.params.get("Prefix", "")).startswith("journal/")]
    assert {c.principal for c in journal_reads} == {WORKER, OPERATOR, PRUNER, RESTORER}
    assert {"sqs.ChangeMessageVisibility", "sqs.SendMessage"} <= _operations(calls, WORKER)
    assert {"sqs.ReceiveMessage", "sqs.DeleteMessage", "dynamodb.TransactWriteItems",
            "sns.Publish"} <= _operations(calls, DEAD_LETTER)
    assert recorded["split"] >= 2 and recorded["split_job"]["status"] == runs.COMPLETED
    assert int(recorded["split_job"]["next_part"]) >= 2
    assert (recorded["dead_run"]["status"], recorded["dead_run"]["users_failed"]) == (runs.PARTIAL, 1)
    assert recorded["drill"]["result"] == "PASSED"
    assert {"s3.ListObjectsV2", "s3.GetObject", "s3.CopyObject", "dynamodb.TransactWriteItems", "dynamodb.GetItem",
            "sqs.ReceiveMessage", "sqs.DeleteMessage", "sqs.ChangeMessageVisibility"} <= _operations(calls, RESTORER)
    assert {"dynamodb.TransactWriteItems", "sqs.SendMessageBatch"} <= _operations(calls, OPERATOR)
    assert (recorded["by_stack"]["status"], recorded["by_stack"]["users_done"]) == (restore_jobs.RESTORED, 4)
    assert recorded["collected"]["content_deleted"] > 0 and recorded["collected"]["manifests_expired"] > 0


def test_content_copies_carry_no_tags_of_the_source_object(recorded):
    """TaggingDirective REPLACE: a tagged client report is stored as content without its tags (and the
    worker needs no tagging permission on either side)."""
    assert recorded["tags"] == []
    copies = [c for c in recorded["calls"] if c.principal == WORKER and c.operation == "CopyObject"]
    assert copies and all(c.params.get("TaggingDirective") == "REPLACE" for c in copies)


@pytest.mark.parametrize("env_name", ENVS)
def test_every_recorded_call_is_allowed_by_the_committed_templates(recorded, env_name):
    """Every environment: the primary's principals. The disaster-recovery reads of its own layout:
    the replica's under RestoreRole (one account), the vault's under the vault's roles."""
    env = load_environment(env_name)
    calls = recorded["calls"] + (recorded["vault_calls"] if env.has_vault else recorded["replica_calls"])
    denials = check_calls(build_model(env), calls)
    assert not denials, "\n".join(d.line() for d in denials)


def test_the_vault_principals_ran_every_path(recorded):
    operations = {(c.principal, f"{c.service}.{c.operation}") for c in recorded["vault_calls"]}
    assert {("VaultLockFunctionRole", "s3.PutObjectRetention"), ("VaultLockFunctionRole", "s3.GetObjectRetention"),
            ("VaultLockFunctionRole", "s3.ListObjectVersions"), ("VaultLockFunctionRole", "dynamodb.PutItem"),
            ("VaultDrillFunctionRole", "s3.GetObject"), ("VaultRestoreRole", "s3.ListObjectVersions"),
            ("VaultRestoreRole", "s3.GetObjectRetention")} <= operations
    assert recorded["vault_drill"]["result"] == "PASSED"
    assert recorded["vault_verify"].ok, recorded["vault_verify"].problems


@pytest.mark.parametrize("env_name", ("prod", "local"))
def test_production_principals_reach_nothing_in_the_vault(recorded, env_name):
    """The calls the vault's roles made, made instead by production's restore role: AWS refuses
    every one (cross-account, no statement lets it in)."""
    moved = [replace(c, principal=OPERATOR) for c in recorded["vault_calls"] if c.service == "s3"]
    denials = check_calls(build_model(load_environment(env_name)), moved)
    assert denials and {d.what for d in denials} >= {"s3.GetObject", "s3.ListObjectVersions"}
    assert all("deny" in d.explanation for d in denials)


@pytest.mark.parametrize("env_name", ENVS)
def test_what_aws_services_do_for_the_stack_is_allowed(env_name):
    denials = check_services(build_model(load_environment(env_name)))
    assert not denials, "\n".join(d.line() for d in denials)


@pytest.mark.parametrize("env_name", ENVS)
def test_calls_the_handlers_made_in_the_other_engine_tests_are_allowed(recorded, env_name):
    """Whatever the engine tests ran before this one (empty when this file runs alone)."""
    denials = check_calls(build_model(load_environment(env_name)), SUITE_CALLS.distinct())
    assert not denials, "\n".join(d.line() for d in denials)


def test_a_call_missing_from_the_translation_table_fails_the_check():
    model = build_model(load_environment("dev"))
    call = Call(WORKER, "s3", "PutObjectAcl", {"Bucket": "backup-cfn-dev-backupbucket", "Key": "content/x"}, "us-east-1")
    assert ("s3", "PutObjectAcl") not in TRANSLATIONS
    [denial] = check_calls(model, [call])
    assert denial.why == "not evaluated" and "does not translate" in denial.explanation


def test_a_call_without_its_permission_fails_the_check(recorded):
    """The worker deleting content: AWS refuses it (no statement, and the bucket policy's deny)."""
    model = build_model(load_environment("prod"))
    call = Call(WORKER, "s3", "DeleteObject", {"Bucket": "backup-cfn-prod-backupbucket", "Key": "content/ab/cd/x"},
                "us-east-1")
    [denial] = check_calls(model, [call])
    assert "explicit deny" in denial.explanation and "OnlyTheCollectorDeletesBackups" in denial.explanation


# --- the six findings of issue 10, put back: the check must report each ---------------------

def _statement(template: dict, resource: str, sid: str) -> dict:
    properties = template["Resources"][resource]["Properties"]
    document = properties.get("PolicyDocument") or properties.get("KeyPolicy") or properties["Policies"][0]["PolicyDocument"]
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


def _replication_context_is_the_object_arn(templates):
    """Finding 1: the context as objects (no bucket key), and no Decrypt on the replica key."""
    primary = templates["primary"]
    for sid in ("DecryptSourceObjects", "EncryptReplicas"):
        condition = _statement(primary, "ReplicationRolePolicy", sid)["Condition"]["StringLike"]
        condition["kms:EncryptionContext:aws:s3:arn"] = condition["kms:EncryptionContext:aws:s3:arn"][1]
    _statement(primary, "ReplicationRolePolicy", "EncryptReplicas")["Action"].remove("kms:Decrypt")


def _if_exists_back(resource):
    def mutate(templates):
        """Findings 2 and 3: StringNotEqualsIfExists, true when the header is absent."""
        for sid in ("DenyUploadsWithOtherEncryption", "DenyUploadsWithOtherKey"):
            statement = _statement(templates["primary"], resource, sid)
            statement["Condition"] = {"StringNotEqualsIfExists": statement["Condition"]["StringNotEquals"]}
    return mutate


def _trail_context_without_region(templates):
    """Finding 4: arn:aws:cloudtrail::ACCOUNT:trail/* (an empty region)."""
    statement = _statement(templates["primary"], "BackupKey", "CloudTrailEncryptsLogs")
    context = statement["Condition"]["StringEquals"].pop("kms:EncryptionContext:aws:cloudtrail:arn")
    statement["Condition"]["StringLike"] = {"kms:EncryptionContext:aws:cloudtrail:arn": {
        "Fn::Sub": context["Fn::Sub"].replace(":${AWS::Region}:", "::").replace("backup-cfn-prod-audit", "*")}}


def _restore_role_without_batch_get_item(templates):
    """Finding 5 (verify's path)."""
    _statement(templates["primary"], "RestoreRole", "CheckContentIndex")["Action"].remove("dynamodb:BatchGetItem")


FINDINGS = {
    "1-replication-context": (_replication_context_is_the_object_arn, "ReplicationRole", "kms:Decrypt"),
    "2-multipart-copy-refused": (_if_exists_back("BackupBucketPolicy"), WORKER, "s3.CompleteMultipartUpload"),
    "3-default-encryption-refused": (_if_exists_back("SourceBucketPolicy"), SOURCE_CLIENT, "s3.PutObject"),
    "4-trail-context": (_trail_context_without_region, "cloudtrail.amazonaws.com", "kms:GenerateDataKey"),
    "5-restore-role": (_restore_role_without_batch_get_item, OPERATOR, "dynamodb:BatchGetItem"),
}


@pytest.mark.parametrize("finding", sorted(FINDINGS))
def test_each_finding_put_back_into_the_templates_is_reported(recorded, finding):
    mutate, principal, expected = FINDINGS[finding]
    templates = copy.deepcopy(committed_templates(load_environment("prod")))
    mutate(templates)
    model = build_model(load_environment("prod"), templates)
    denials = check_calls(model, recorded["calls"]) + check_services(model)
    assert any(d.principal == principal and expected in d.line() for d in denials), \
        f"no denial of {expected} for {principal}: " + "\n".join(d.line() for d in denials)


def test_finding_6_copies_that_keep_the_source_tags_are_reported(recorded):
    """The worker's copies with TaggingDirective COPY (the default) need tagging permissions it lacks."""
    copies = [replace(c, params={k: v for k, v in c.params.items() if k != "TaggingDirective"})
              for c in recorded["calls"] if c.principal == WORKER and c.operation == "CopyObject"]
    denials = check_calls(build_model(load_environment("prod")), copies)
    assert {"s3:GetObjectVersionTagging", "s3:PutObjectTagging"} <= {d.explanation.split()[1] for d in denials}


# --- the attacker's side: what the restore function's role must not be able to do ----------------

def _restorer_call(service: str, operation: str, params: dict, region: str = "us-east-1") -> Call:
    return Call(RESTORER, service, operation, params, region)


RESTORER_DENIED = {
    "delete backup content": _restorer_call("s3", "DeleteObject", {"Bucket": "backup-cfn-prod-backupbucket",
                                                                   "Key": "content/ab/cd/" + "a" * 64}),
    "overwrite a snapshot": _restorer_call("s3", "PutObject", {"Bucket": "backup-cfn-prod-backupbucket",
                                                               "Key": "manifests/client-0001/20261125T020000Z.json.gz"}),
    "plant content": _restorer_call("s3", "CopyObject", {
        "Bucket": "backup-cfn-prod-backupbucket", "Key": "content/ab/cd/" + "b" * 64,
        "CopySource": {"Bucket": "backup-cfn-prod-sourcebucket", "Key": "client-0001/x.pdf"},
        "TaggingDirective": "REPLACE"}),
    "delete a replica version": _restorer_call("s3", "DeleteObject", {
        "Bucket": "backup-cfn-prod-replica-replicabucket", "Key": "content/ab/cd/" + "a" * 64, "VersionId": "v1"},
        "us-west-2"),
    "copy backups out to another bucket": _restorer_call("s3", "CopyObject", {
        "Bucket": "attacker-bucket", "Key": "loot", "TaggingDirective": "REPLACE",
        "CopySource": {"Bucket": "backup-cfn-prod-backupbucket", "Key": "content/ab/cd/" + "a" * 64}}),
    "read client reports in the source bucket": _restorer_call("s3", "GetObject", {
        "Bucket": "backup-cfn-prod-sourcebucket", "Key": "client-0001/report.pdf"}),
    "rewrite a backup run's record": _restorer_call("dynamodb", "UpdateItem", {
        "TableName": "backup-cfn-prod-runstable",
        "Key": {"run_id": {"S": "20261125T020000Z"}, "item": {"S": "RUN"}}}),
    "mark a backup job done": _restorer_call("dynamodb", "TransactWriteItems", {"TransactItems": [{"Update": {
        "TableName": "backup-cfn-prod-runstable",
        "Key": {"run_id": {"S": "20261125T020000Z#07"}, "item": {"S": "USER#client-0001"}}}}]}),
    "forge the content index": _restorer_call("dynamodb", "PutItem", {
        "TableName": "backup-cfn-prod-contentindextable", "Item": {"content_hash": {"S": "a" * 64}}}),
    "start a backup run": _restorer_call("lambda", "Invoke", {"FunctionName": "backup-cfn-prod-initiator"}),
}


@pytest.mark.parametrize("attempt", sorted(RESTORER_DENIED))
def test_the_restore_functions_role_is_denied(attempt):
    """Proved by evaluation, as AWS would decide: a compromised restore function can restore, and
    nothing else (docs/permissions.md)."""
    model = build_model(load_environment("prod"))
    call = RESTORER_DENIED[attempt]
    aliases = {"backup-cfn-prod-initiator": "InitiatorFunction"}
    denials = check_calls(model, [replace(call, aliases=aliases)])
    assert denials, f"the restore function may {attempt}"
    assert all(d.principal == RESTORER and d.why != "not evaluated" for d in denials), \
        "\n".join(d.line() for d in denials)


def test_the_restore_functions_own_writes_are_allowed_only_under_restore_keys():
    model = build_model(load_environment("prod"))
    allowed = _restorer_call("dynamodb", "UpdateItem", {
        "TableName": "backup-cfn-prod-runstable",
        "Key": {"run_id": {"S": "R20261125T031500Z#03"}, "item": {"S": "USER#client-0001"}}})
    assert check_calls(model, [allowed]) == []
    [denial] = [d for d in check_calls(model, [replace(allowed, params={**allowed.params, "Key": {
        "run_id": {"S": "20261125T020000Z#03"}, "item": {"S": "USER#client-0001"}}})]) if "UpdateItem" in d.what]
    assert "dynamodb:UpdateItem" in denial.explanation
