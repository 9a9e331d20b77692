"""Many users restored by the stack (engine/restore_jobs.py, ops/restore_service.py), on the
emulator: the real restore handler under the runner that reproduces Lambda's event source mapping
and deadlines. Byte-exact files for every user, from the backup bucket and from the replica, a
result per user (restored, failed with the file named, skipped without a snapshot then), one
close; a user too large for one invocation handed on over several; an interrupted start resumed;
a job whose every delivery was killed recorded FAILED by the dead-letter consumer; bad jobs and
targets refused."""
from __future__ import annotations

import itertools
import json

import pytest

from backup_cfn import aws, contract
from backup_cfn.engine import naming, restore_jobs, runs
from backup_cfn.engine.errors import InvalidJob
from backup_cfn.engine.worker import Delivery
from backup_cfn.local.runner import drain_restore_queue
from backup_cfn.ops import restore as ops_restore, restore_service
from backup_cfn.ops.target import DeployedEnvironment

from engine_support import backup, make_engine, put, sha, source_state
from test_json_output import check_document
from test_restore_many import restore_cli

SHARED = b"%PDF standard terms, every user holds them" * 50
FILES = {
    "ann": {"reports/q1.pdf": b"ann q1" * 300, "reports/2026/q2.xlsx": b"ann q2", "terms.pdf": SHARED},
    "ben": {"reports/q1.pdf": b"ben q1" * 700, "notes/empty.txt": b"", "terms.pdf": SHARED},
    "cy": {"a/b/c/deep.csv": b"cy,deep\n" * 90, "terms.pdf": SHARED},
}


@pytest.fixture
def engine(local_env, monkeypatch):
    engine = make_engine(local_env)
    for user, files in FILES.items():
        for path, data in files.items():
            put(engine, user, path, data)
    assert backup(engine)["status"] == "SUCCEEDED"
    deployed = DeployedEnvironment(local_env, engine.clients, engine.settings, engine.outputs)
    monkeypatch.setattr(ops_restore, "connect", lambda env: deployed)
    return engine


def restored(engine, prefix: str, user: str) -> dict[str, bytes]:
    found = {}
    for page in engine.s3.get_paginator("list_objects_v2").paginate(Bucket=engine.settings.source_bucket,
                                                                    Prefix=f"{prefix}/{user}/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + len(user) + 2:]] = engine.s3.get_object(
                Bucket=engine.settings.source_bucket, Key=item["Key"])["Body"].read()
    return found


def _restore_id(output: str) -> str:
    return next(word.rstrip(":") for word in output.split() if restore_jobs.is_restore_id(word.rstrip(":")))


def test_every_user_restored_by_the_stack_byte_exact_with_a_result_each_and_one_close(engine, environments):
    source = engine.settings.source_bucket
    result = restore_cli(environments, "--all-users", "--to", f"s3://{source}/dr/", "--json")
    assert result.exit_code == 0, result.output
    summary = check_document(result.stdout, "backup-cfn/restore")
    for user in FILES:
        assert restored(engine, "dr", user) == source_state(engine, user)
    assert (summary["users_total"], summary["users_restored"], summary["users_failed"]) == (3, 3, 0)
    assert summary["files"] == sum(len(f) for f in FILES.values()) and summary["ran_on"] == "stack"
    record = restore_jobs.get_restore(engine.clients.dynamodb, engine.settings, summary["restore_id"])
    assert (record["status"], record["users_done"], record["users_pending"]) == (restore_jobs.RESTORED, 3, 0)
    results = restore_jobs.user_results(engine.clients.dynamodb, engine.settings, summary["restore_id"])
    assert [(r["user"], r["status"], int(r["files"])) for r in results] == [
        ("ann", "COMPLETED", 3), ("ben", "COMPLETED", 3), ("cy", "COMPLETED", 2)]
    # Each restored object's S3-computed SHA-256 is the snapshot's.
    head = engine.s3.head_object(Bucket=source, Key="dr/ann/terms.pdf", ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(SHARED)
    # A user's history lists the backup runs, not the restores that named the user.
    history = runs.user_history(engine.clients.dynamodb, engine.settings, "ann")
    assert [h["run_id"] for h in history] == [naming.run_id_for(engine.clock())]


def test_from_the_replica_at_a_point_in_time_with_users_skipped_and_a_failed_file_named(engine, environments):
    first_run = naming.run_id_for(engine.clock())
    engine.clock.advance(days=1)
    put(engine, "ann", "reports/q1.pdf", b"ann q1 revised")
    put(engine, "eve", "new.pdf", b"eve joined on day 2")
    assert backup(engine)["status"] == "SUCCEEDED"
    replica, backup_bucket = engine.outputs[contract.OUTPUT_REPLICA_BUCKET], engine.settings.backup_bucket
    replica_s3 = aws.client(engine.env, "s3", engine.env.replica_region)
    for page in engine.s3.get_paginator("list_objects_v2").paginate(Bucket=backup_bucket):
        for item in page.get("Contents", []):
            replica_s3.copy_object(Bucket=replica, Key=item["Key"], CopySource={"Bucket": backup_bucket, "Key": item["Key"]})
    # One content object lost in the replica: the user holding it fails with that file named.
    replica_s3.delete_object(Bucket=replica, Key=naming.content_key(sha(FILES["cy"]["a/b/c/deep.csv"])))

    source = engine.settings.source_bucket
    result = restore_cli(environments, "--all-users", "--from-replica", "--run", first_run, "--to", f"s3://{source}/pit")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: 1 of 3 user(s) not restored: cy" in result.output
    assert "skipped eve: user 'eve' has no backup at or before 2026-11-25T02:00:00Z" in result.output
    assert restored(engine, "pit", "ann")["reports/q1.pdf"] == FILES["ann"]["reports/q1.pdf"]   # as it was then
    assert restored(engine, "pit", "ben") == FILES["ben"]
    restore_id = _restore_id(result.output)
    results = {r["user"]: r for r in restore_jobs.user_results(engine.clients.dynamodb, engine.settings, restore_id)}
    assert set(results) == {"ann", "ben", "cy", "eve"}, (restore_id, results)
    assert results["cy"]["status"] == "FAILED" and "a/b/c/deep.csv" in results["cy"]["problems"][0]
    assert int(results["cy"]["files"]) == 1 and results["eve"]["status"] == "SKIPPED"
    record = restore_jobs.get_restore(engine.clients.dynamodb, engine.settings, restore_id)
    assert (record["status"], record["users_done"], record["users_failed"], record["users_skipped"]) == (
        restore_jobs.PARTIAL, 2, 1, 1)


def test_a_user_too_large_for_one_invocation_is_handed_on_and_counted_once(engine):
    for i in range(300):
        put(engine, "big", f"files/{i:04d}.txt", b"big %d" % i)
    engine.clock.advance(hours=1)
    assert backup(engine, users=["big"])["status"] == "SUCCEEDED"
    target = DeployedEnvironment(engine.env, engine.clients, engine.settings, engine.outputs)
    restore_id = restore_service.start(target, users=["big", "ann"], source="backup", source_s3=engine.s3,
                                       to=f"s3://{engine.settings.source_bucket}/chunks", run_id=None, at=None,
                                       path_prefix=None)
    # Each invocation's remaining time counts down 10 s per look (a deterministic stand-in for
    # Lambda's clock: about 80 files before the reserve): a 300-file user takes several invocations.
    invocations = 0
    while invocations < 40:
        messages = engine.clients.sqs.receive_message(QueueUrl=engine.settings.restore_queue_url, MaxNumberOfMessages=1,
                                                      AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        if not messages:
            break
        [message] = messages
        looks = itertools.count()
        delivery = Delivery(message["Body"], message["ReceiptHandle"], 1,
                            remaining_ms=lambda: max(0, 900_000 - 10_000 * next(looks)))
        invocations += 1
        outcome = restore_jobs.handle_delivery(engine.clients, engine.settings, delivery)
        assert outcome.status in ("HANDED_ON", "COMPLETED")
        engine.clients.sqs.delete_message(QueueUrl=engine.settings.restore_queue_url,
                                          ReceiptHandle=message["ReceiptHandle"])
    assert invocations >= 4
    assert restored(engine, "chunks", "big") == source_state(engine, "big")
    big = next(r for r in restore_jobs.user_results(engine.clients.dynamodb, engine.settings, restore_id)
               if r["user"] == "big")
    assert big["status"] == "COMPLETED" and int(big["files"]) == 300 and int(big["next_part"]) >= 1
    record = restore_jobs.get_restore(engine.clients.dynamodb, engine.settings, restore_id)
    assert (record["status"], record["files"], record["users_done"]) == (restore_jobs.RESTORED, 303, 2)


def test_an_interrupted_start_is_resumed_and_finishes(engine, environments, monkeypatch):
    """The operator's machine dies after recording the restore and enqueuing one user: --resume
    enqueues the others (not the one with a result) and follows the restore to its end."""
    target = DeployedEnvironment(engine.env, engine.clients, engine.settings, engine.outputs)
    sent = []
    real_enqueue = restore_service.enqueue_jobs

    def die_after_the_first(sqs, settings, jobs, **kwargs):
        sent.extend(jobs[:1])
        real_enqueue(sqs, settings, jobs[:1], **kwargs)
        raise KeyboardInterrupt()

    monkeypatch.setattr(restore_service, "enqueue_jobs", die_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        restore_service.start(target, users=None, source="backup", source_s3=engine.s3,
                              to=f"s3://{engine.settings.source_bucket}/resumed", run_id=None, at=None, path_prefix=None)
    monkeypatch.setattr(restore_service, "enqueue_jobs", real_enqueue)
    restore_id = sent[0].restore_id
    drain_restore_queue(engine.clients, engine.settings, "", threads=2)
    assert restore_jobs.get_restore(engine.clients.dynamodb, engine.settings, restore_id)["status"] == \
        restore_jobs.ENQUEUING

    result = restore_cli(environments, "--resume", restore_id)
    assert result.exit_code == 0, result.output
    assert "3 of 3" in result.output
    for user in FILES:
        assert restored(engine, "resumed", user) == source_state(engine, user)
    results = restore_jobs.user_results(engine.clients.dynamodb, engine.settings, restore_id)
    assert all(int(r.get("attempts") or 0) == 0 for r in results)     # the first user was not enqueued twice
    again = restore_cli(environments, "--resume", restore_id)         # a closed restore: its summary again
    assert again.exit_code == 0 and "3 of 3" in again.output


def test_a_job_killed_on_every_delivery_is_recorded_failed_by_the_dead_letter_consumer(engine):
    target = DeployedEnvironment(engine.env, engine.clients, engine.settings, engine.outputs)
    restore_id = restore_service.start(target, users=["ann", "ben"], source="backup", source_s3=engine.s3,
                                       to=f"s3://{engine.settings.source_bucket}/dl", run_id=None, at=None,
                                       path_prefix=None)
    sqs, queue = engine.clients.sqs, engine.settings.restore_queue_url
    dead_letters = engine.outputs[contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    ben = next(m for m in messages if json.loads(m["Body"])["user"] == "ben")
    for message in messages:      # ann back to the queue; ben as SQS leaves a job killed five times
        if message is not ben:
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    sqs.send_message(QueueUrl=dead_letters, MessageBody=ben["Body"])
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=ben["ReceiptHandle"])
    arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    report = drain_restore_queue(engine.clients, engine.settings.with_(restore_dead_letter_queue_arn=arn),
                                 dead_letters, threads=2)
    assert report.dead_lettered == [ben["Body"]]
    results = {r["user"]: r for r in restore_jobs.user_results(engine.clients.dynamodb, engine.settings, restore_id)}
    assert results["ben"]["status"] == "FAILED" and results["ben"]["reason"].startswith("dead-lettered after 5")
    assert results["ann"]["status"] == "COMPLETED"
    assert restore_jobs.get_restore(engine.clients.dynamodb, engine.settings, restore_id)["status"] == \
        restore_jobs.PARTIAL


@pytest.mark.parametrize("body, reason", [
    ("not json", "not JSON"),
    (json.dumps({"version": 1, "restore_id": "R20261125T020000Z", "user": "a/b", "source": "backup",
                 "target": {"bucket": "x"}}), "user"),
    (json.dumps({"version": 1, "restore_id": "20261125T020000Z", "user": "ann", "source": "backup",
                 "target": {"bucket": "x"}}), "restore_id"),
    # A point in time (issue 20) names its moment and no run.
    (json.dumps({"version": 1, "restore_id": "R20261125T020000Z", "user": "ann", "source": "backup",
                 "snapshot": {"run_id": "20261125T020000Z", "point_in_time": True}, "target": {"bucket": "x"}}),
     "point in time"),
    (json.dumps({"version": 1, "restore_id": "R20261125T020000Z", "user": "ann", "source": "backup",
                 "snapshot": {"at": "20261125T020000Z", "point_in_time": "yes"}, "target": {"bucket": "x"}}),
     "point in time"),
])
def test_malformed_restore_jobs_are_invalid(body, reason):
    with pytest.raises(InvalidJob, match=reason):
        restore_jobs.parse_job(body)


def test_a_job_for_another_bucket_or_source_is_invalid_and_writes_nothing(engine):
    target = DeployedEnvironment(engine.env, engine.clients, engine.settings, engine.outputs)
    restore_id = restore_service.start(target, users=["ann"], source="backup", source_s3=engine.s3,
                                       to=f"s3://{engine.settings.source_bucket}/x", run_id=None, at=None,
                                       path_prefix=None)
    for job in (restore_jobs.RestoreJob(restore_id, "ann", "backup", "someone-elses-bucket"),
                restore_jobs.RestoreJob(restore_id, "ann", "vault", engine.settings.source_bucket)):
        with pytest.raises(InvalidJob):
            restore_jobs.handle_delivery(engine.clients, engine.settings, Delivery(job.body()))
    assert restore_jobs.user_results(engine.clients.dynamodb, engine.settings, restore_id) == []


@pytest.mark.parametrize("args, message", [
    (["--all-users", "--to", "s3://elsewhere/dr"], "may write only into the source bucket"),
    (["--resume", "R20991231T000000Z"], "no restore R20991231T000000Z"),
    (["--resume", "R20991231T000000Z", "--all-users"], "give it alone"),
])
def test_bad_restore_service_requests_are_one_line(engine, environments, args, message):
    result = restore_cli(environments, *args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert message in [line for line in result.output.splitlines() if line.startswith("Error:")][0]
