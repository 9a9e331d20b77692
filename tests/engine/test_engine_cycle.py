"""The full cycle on the emulator, through the real handlers: back up, change, back up, restore
every run, verify, prune, restore from the replica."""
from __future__ import annotations

import json

import pytest

from backup_cfn import aws, contract
from backup_cfn.engine import naming, runs
from backup_cfn.engine.errors import RestoreError
from backup_cfn.engine.manifest import list_manifests
from backup_cfn.engine.pruner import prune
from backup_cfn.engine.restore import load_for_restore, restore_to_directory, restore_to_s3
from backup_cfn.engine.settings import Clients
from backup_cfn.engine.verify import verify
from backup_cfn.local import server

from engine_support import all_content_versions, backup, delete, put, read_tree, sha, source_state

SHARED = b"%PDF-1.7 shared terms and conditions " * 500
A1, A2 = b"%PDF-1.7 alice q3 " * 300, b"PK\x03\x04 alice sheet " * 200
B1 = b"%PDF-1.7 bob annual " * 400


def subscribe_queue(engine) -> str:
    sqs = engine.clients.sqs
    url = sqs.create_queue(QueueName=f"{engine.settings.runs_table}-summaries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    engine.clients.sns.subscribe(TopicArn=engine.settings.topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def summaries(engine, url) -> list[str]:
    messages = engine.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["Subject"] for m in messages]


def test_backup_change_backup_restore_each_run_verify_prune(engine, tmp_path):
    summary_queue = subscribe_queue(engine)
    put(engine, "alice", "terms.pdf", SHARED)
    put(engine, "alice", "reports/q3.pdf", A1, checksum=True)
    put(engine, "alice", "sheets/budget.xlsx", A2)
    put(engine, "bob", "terms.pdf", SHARED)
    put(engine, "bob", "reports/annual.pdf", B1)
    day1 = {u: source_state(engine, u) for u in ("alice", "bob")}

    first = backup(engine)
    assert first["status"] == runs.SUCCEEDED
    assert (first["users_done"], first["users_failed"], first["files_total"]) == (2, 0, 5)
    # The shared file is stored once; the checksummed upload is never read.
    assert first["bytes_new"] == len(SHARED) + len(A1) + len(A2) + len(B1)
    assert first["bytes_read"] == first["bytes_scanned"] - len(A1)
    assert set(all_content_versions(engine).values()) == {1} and len(all_content_versions(engine)) == 4
    assert summaries(engine, summary_queue) == [f"backup-cfn {engine.settings.stack_name}: run {first['run_id']} SUCCEEDED"]

    engine.clock.advance(days=1)
    A1_NEW = A1 + b" revised"
    put(engine, "alice", "reports/q3.pdf", A1_NEW)
    delete(engine, "alice", "sheets/budget.xlsx")
    put(engine, "bob", "reports/new.pdf", A2)  # bob now holds content alice had: deduplicated
    day2 = {u: source_state(engine, u) for u in ("alice", "bob")}

    second = backup(engine)
    assert second["status"] == runs.SUCCEEDED
    assert second["files_changed"] == 2                     # only what changed was read
    assert second["bytes_read"] == len(A1_NEW) + len(A2)
    assert second["bytes_new"] == len(A1_NEW)               # A2 was already stored
    assert len(all_content_versions(engine)) == 5

    for run, expected in ((first, day1), (second, day2)):
        for user in ("alice", "bob"):
            manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, user, run_id=run["run_id"])
            target = tmp_path / run["run_id"] / user
            report = restore_to_directory(engine.s3, engine.settings.backup_bucket, manifest, target)
            assert report.ok and report.files == len(expected[user])
            assert read_tree(target) == expected[user]

    # Point in time: a date between the runs restores the first run.
    at = naming.run_time(first["run_id"]).replace(hour=12)
    assert load_for_restore(engine.s3, engine.settings.backup_bucket, "alice", at=at).run_id == first["run_id"]

    engine.s3.create_bucket(Bucket=f"{engine.settings.source_bucket}-restored")
    manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, "bob")
    report = restore_to_s3(engine.s3, engine.settings.backup_bucket, manifest,
                           f"{engine.settings.source_bucket}-restored", "drill/bob", path_prefix="reports/")
    assert report.ok and report.files == 2
    restored = engine.s3.get_object(Bucket=f"{engine.settings.source_bucket}-restored", Key="drill/bob/reports/new.pdf")
    assert restored["Body"].read() == A2

    assert verify(engine.clients, engine.settings, sample_percent=100, seed=1).ok

    # 61 days on, with one more backup: day 1's snapshots expire, day 2's are the checkpoint before
    # the retention window (a point-in-time restore at its first minute starts there), and what
    # only day 1 referenced goes once past the grace period.
    engine.clock.advance(days=61)
    third = backup(engine)
    assert third["status"] == runs.SUCCEEDED and third["bytes_new"] == 0
    report = prune(engine.clients, engine.settings)
    assert len(report.manifests_expired) == 2 and report.rules["base"][1] == 2
    assert report.content_deleted == [sha(A1)]  # alice's old q3: no kept snapshot names it
    assert [m[1] for m in list_manifests(engine.s3, engine.settings.backup_bucket, "alice")] == [second["run_id"],
                                                                                                  third["run_id"]]
    with pytest.raises(RestoreError):
        load_for_restore(engine.s3, engine.settings.backup_bucket, "alice", run_id=first["run_id"])
    current = load_for_restore(engine.s3, engine.settings.backup_bucket, "alice")
    assert read_tree_after(restore_to_directory, engine, current, tmp_path / "after") == day2["alice"]
    assert verify(engine.clients, engine.settings, sample_percent=100, seed=2).ok
    # Running it again finds nothing more to do.
    assert prune(engine.clients, engine.settings).content_deleted == []


def read_tree_after(restore, engine, manifest, target) -> dict[str, bytes]:
    report = restore(engine.s3, engine.settings.backup_bucket, manifest, target)
    assert report.ok
    return read_tree(target)


def test_restore_from_replica_needs_nothing_from_the_primary_region(engine, tmp_path):
    put(engine, "carol", "reports/a.pdf", A1)
    put(engine, "carol", "terms.pdf", SHARED)
    assert backup(engine)["status"] == runs.SUCCEEDED
    # The emulator replicates the backup bucket to the replica region, asynchronously, as S3 does.
    assert server.wait_for_replication(engine.env.endpoint_url)["failed"] == 0
    replica = engine.outputs[contract.OUTPUT_REPLICA_BUCKET]
    replica_s3 = aws.client(engine.env, "s3", engine.env.replica_region)
    # The primary region is gone: no primary clients at all, no tables.
    dr = Clients(s3=replica_s3, dynamodb=None)
    manifest = load_for_restore(replica_s3, replica, "carol")
    report = restore_to_directory(replica_s3, replica, manifest, tmp_path / "dr")
    assert report.ok and read_tree(tmp_path / "dr") == source_state(engine, "carol")
    checked = verify(dr, engine.settings, sample_percent=100, check_index=False, bucket=replica)
    assert checked.ok and checked.content_referenced == 2


def test_verify_reports_missing_and_corrupt_content(engine):
    put(engine, "dave", "a.pdf", A1)
    put(engine, "dave", "b.pdf", B1)
    assert backup(engine)["status"] == runs.SUCCEEDED
    bucket = engine.settings.backup_bucket
    engine.s3.delete_object(Bucket=bucket, Key=naming.content_key(sha(A1)))
    engine.s3.put_object(Bucket=bucket, Key=naming.content_key(sha(B1)), Body=b"X" * len(B1))
    report = verify(engine.clients, engine.settings, sample_percent=100, seed=0)
    assert not report.ok
    assert any(f"content {sha(A1)} is missing" in p for p in report.problems)
    assert any(f"content {sha(B1)[:16]} hashes to {sha(b'X' * len(B1))[:16]}: corrupt" in p for p in report.problems)


def test_a_directory_restore_refuses_a_file_whose_content_is_damaged_and_restores_the_rest(engine, tmp_path):
    put(engine, "erin", "a.pdf", A1)
    put(engine, "erin", "b.pdf", B1)
    assert backup(engine)["status"] == runs.SUCCEEDED
    bucket = engine.settings.backup_bucket
    # Damaged in every version (a written-over version alone is read through: engine/readback.py).
    key = naming.content_key(sha(B1))
    for version in engine.s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
        engine.s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    engine.s3.put_object(Bucket=bucket, Key=key, Body=b"X" * len(B1))
    report = restore_to_directory(engine.s3, bucket, load_for_restore(engine.s3, bucket, "erin"), tmp_path / "out")
    assert report.problems == [f"b.pdf: content {sha(B1)[:16]} hashes to {sha(b'X' * len(B1))[:16]}: corrupt; "
                               "not restored"]
    assert read_tree(tmp_path / "out") == {"a.pdf": A1}   # no partial file left behind either


def test_a_retried_schedule_event_does_not_enqueue_twice(engine):
    from backup_cfn.engine.initiator import handle_schedule_event

    from engine_support import load_event
    put(engine, "erin", "a.pdf", A1)
    event = load_event("scheduled_event.json")
    first = handle_schedule_event(engine.clients, engine.settings, event)
    again = handle_schedule_event(engine.clients, engine.settings, event)
    assert (first.created, first.enqueued) == (True, 1)
    assert (again.created, again.enqueued, again.run_id) == (False, 0, first.run_id)
    attributes = engine.clients.sqs.get_queue_attributes(QueueUrl=engine.settings.job_queue_url,
                                                         AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_run_completion_emits_the_metrics_the_alarm_reads(engine, capsys, monkeypatch):
    from backup_cfn.local.runner import drain_queue, invoke_initiator
    from handlers import worker as worker_handler
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    put(engine, "frank", "a.pdf", A1)
    invoke_initiator(engine.clients, engine.settings, engine.clock(), None)
    capsys.readouterr()
    drain_queue(engine.clients, engine.settings, run_id=naming.run_id_for(engine.clock()), threads=1)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert documents, "no EMF document printed"
    emf = documents[-1]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == contract.METRIC_NAMESPACE
    assert directive["Dimensions"] == [[contract.METRIC_DIMENSION]]
    assert emf[contract.METRIC_DIMENSION] == engine.settings.stack_name
    assert emf[contract.METRIC_RUNS_SUCCEEDED] in (1, [1]) and emf[contract.METRIC_USERS_BACKED_UP] in (1, [1])
    assert worker_handler.runtime.metrics.metric_set == {}
