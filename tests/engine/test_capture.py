"""Continuous protection: the source's changes reach the journal through S3 -> EventBridge -> the
capture queue -> the capture function (engine/capture.py, handlers/capture.py), content stored once
by the same store-once protocol, and a point-in-time view gives the files as they were."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from backup_cfn.engine import journal, naming, pointintime, restore_jobs, runs
from backup_cfn.engine.capture import (
    DELETED_BEFORE_CAPTURE,
    LEFT_TO_NIGHTLY,
    OVERWRITTEN_BEFORE_CAPTURE,
    capture_batch,
    count_burst,
    parse_event,
)
from backup_cfn.engine.journal import PUT
from backup_cfn.engine.worker import Delivery
from backup_cfn.ops import restore_service
from backup_cfn.ops.target import DeployedEnvironment

from capture_support import CAPTURE, capture_queue, delete_event, put_event, record, s3_event
from engine_support import backup, content_versions, make_engine, put, delete, sha, source_state


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def engine(local_env):
    """An engine on real time: S3's events carry the emulator's clock."""
    built = make_engine(local_env)
    built.clock.set(now())
    return built


def capture(engine, records, **options):
    """One invocation's work, as the capture function's role (its calls go to the conformance test)."""
    return capture_batch(engine.as_role(CAPTURE), engine.settings, records, **options)


def view(engine, user: str, at: datetime | None = None):
    return pointintime.view_at(engine.s3, engine.settings.backup_bucket, user, at or now())


def restored(engine, manifest) -> dict[str, bytes]:
    return {path: engine.s3.get_object(Bucket=engine.settings.backup_bucket,
                                       Key=naming.content_key(entry.sha256))["Body"].read()
            for path, entry in manifest.entries.items()}


def test_changes_flow_from_the_source_bucket_to_the_journal_without_a_run(engine):
    """Through the emulator's real S3 -> EventBridge -> SQS path and the capture function's handler."""
    put(engine, "ann", "reports/q1.pdf", b"quarter one")
    put(engine, "ann", "reports/q2.pdf", b"quarter two")
    put(engine, "ann", "reports/q1.pdf", b"quarter one, revised")
    delete(engine, "ann", "reports/q2.pdf")
    put(engine, "bob", "copy-of-q1.pdf", b"quarter one, revised")     # the same content: stored once
    stats = capture_queue(engine)
    assert stats.messages == 5 and stats.failed == 0 and stats.errors == []
    assert restored(engine, view(engine, "ann").manifest) == source_state(engine, "ann")
    assert restored(engine, view(engine, "bob").manifest) == source_state(engine, "bob")
    assert content_versions(engine, sha(b"quarter one, revised")) == 1
    assert [ref.user for ref in journal.list_segments(engine.s3, engine.settings.backup_bucket)] == ["ann", "bob"]
    assert runs.get_run(engine.clients.dynamodb, engine.settings, naming.run_id_for(engine.clock())) is None


def test_a_minute_between_two_nightly_runs_restores_as_the_source_was_then(engine):
    put(engine, "cy", "plan.txt", b"v1")
    put(engine, "cy", "notes.txt", b"notes")
    t0 = now().replace(microsecond=0) + timedelta(seconds=1)
    engine.clock.set(t0)
    first = backup(engine)
    assert first["status"] == runs.SUCCEEDED
    capture_queue(engine)   # the day-one writes' events: before the snapshot, changing nothing
    minute = t0 + timedelta(minutes=10)
    events = [put_event(engine, "cy", "plan.txt", b"v2", minute - timedelta(minutes=5)),
              delete_event(engine, "cy", "notes.txt", minute - timedelta(minutes=1)),
              put_event(engine, "cy", "plan.txt", b"v3, encrypted by ransomware", minute + timedelta(minutes=1))]
    outcome = capture(engine, [record(e) for e in events])
    assert outcome.captured == 3 and not outcome.failed
    at_minute = view(engine, "cy", minute)
    # From the snapshot: its own writes' events (harmless again) and the two changes up to the minute.
    assert at_minute.base_run_id == first["run_id"] and at_minute.changes == 4
    assert restored(engine, at_minute.manifest) == {"plan.txt": b"v2"}
    assert restored(engine, view(engine, "cy", minute - timedelta(minutes=7)).manifest) == {
        "plan.txt": b"v1", "notes.txt": b"notes"}
    assert restored(engine, view(engine, "cy", minute + timedelta(minutes=2)).manifest) == {
        "plan.txt": b"v3, encrypted by ransomware"}


def test_a_restore_by_the_stack_at_a_minute_keeps_that_minute_in_every_chunk(engine):
    """Issue 21's restore function reads the same view: a job at a time folds the journal into the
    snapshot, and its hand-on keeps the moment (not the snapshot's run), so every chunk restores the
    same minute."""
    for name in ("a.txt", "b.txt", "c.txt"):
        put(engine, "dee", name, name.encode())
    t0 = now().replace(microsecond=0) + timedelta(seconds=1)
    engine.clock.set(t0)
    assert backup(engine)["status"] == runs.SUCCEEDED
    capture_queue(engine)
    minute = t0 + timedelta(minutes=10)
    events = [put_event(engine, "dee", "a.txt", b"a, edited", minute - timedelta(minutes=5)),
              delete_event(engine, "dee", "b.txt", minute - timedelta(minutes=2)),
              put_event(engine, "dee", "d.txt", b"d, new", minute - timedelta(minutes=1)),
              put_event(engine, "dee", "a.txt", b"encrypted", minute + timedelta(minutes=1)),
              put_event(engine, "eli", "first.txt", b"eli joined today", minute - timedelta(minutes=3))]
    assert capture(engine, [record(e) for e in events]).captured == 5
    target = DeployedEnvironment(engine.env, engine.clients, engine.settings, engine.outputs)
    # Every user: eli has only a journal (no nightly run since joining) and is restored too.
    restore_id = restore_service.start(target, users=None, source="backup", source_s3=engine.s3,
                                       to=f"s3://{engine.settings.source_bucket}/pit", run_id=None, at=minute,
                                       path_prefix=None)
    queue, sqs, chunks = engine.settings.restore_queue_url, engine.clients.sqs, 0
    while chunks < 10:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            break
        # No time left after each file: one file per invocation, the rest handed on.
        delivery = Delivery(messages[0]["Body"], messages[0]["ReceiptHandle"], 1, remaining_ms=lambda: 0)
        assert restore_jobs.handle_delivery(engine.clients, engine.settings, delivery).status in (
            "HANDED_ON", "COMPLETED")
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
        chunks += 1
    assert chunks == 4
    job = restore_jobs.RestoreJob(restore_id, "dee", "backup", engine.settings.source_bucket,
                                  at=naming.run_id_for(minute), point_in_time=True)
    assert restore_jobs.parse_job(job.continuation("20990101T000000Z", "a.txt").body()).at == job.at
    bucket = engine.settings.source_bucket
    listed = engine.s3.list_objects_v2(Bucket=bucket, Prefix="pit/dee/").get("Contents", [])
    assert {item["Key"]: engine.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed} == {
        "pit/dee/a.txt": b"a, edited", "pit/dee/c.txt": b"c.txt", "pit/dee/d.txt": b"d, new"}
    assert engine.s3.get_object(Bucket=bucket, Key="pit/eli/first.txt")["Body"].read() == b"eli joined today"
    results = {r["user"]: r for r in restore_jobs.user_results(engine.clients.dynamodb, engine.settings, restore_id)}
    assert results["dee"]["status"] == "COMPLETED" and int(results["dee"]["files"]) == 3
    assert results["eli"]["status"] == "COMPLETED"


def test_duplicate_and_out_of_order_events_give_one_change_each_in_order(engine):
    t = now()
    first = put_event(engine, "dee", "a.txt", b"first", t - timedelta(seconds=30))
    second = put_event(engine, "dee", "a.txt", b"second", t - timedelta(seconds=30))   # same second: the sequencer decides
    gone = delete_event(engine, "dee", "b.txt", t - timedelta(seconds=20))
    batch = [record(second), record(gone), record(first), record(second)]               # late, early, twice
    outcome = capture(engine, batch)
    assert outcome.captured == 4 and not outcome.failed and not outcome.ignored
    outcome = capture(engine, [record(first)])            # EventBridge redelivers
    assert outcome.captured == 1
    result = view(engine, "dee", t)
    assert restored(engine, result.manifest) == {"a.txt": b"second"}
    assert content_versions(engine, sha(b"second")) == 1 and content_versions(engine, sha(b"first")) == 1
    sizes = sorted(len(journal.read_segment(engine.s3, engine.settings.backup_bucket, ref.key).changes)
                   for ref in journal.list_segments(engine.s3, engine.settings.backup_bucket, "dee"))
    assert sizes == [1, 3]          # the duplicate in the first batch is one change


@pytest.mark.parametrize("body,reason", [
    ("not json at all", "not JSON"),
    ('{"source": "aws.ec2"}', "not an S3 event"),
    ('{"source": "aws.s3", "detail-type": "Object Tags Added"}', "not a change"),
])
def test_events_that_are_not_changes_are_dropped_not_retried(engine, body, reason):
    outcome = capture(engine, [record(body, "m-1")])
    assert outcome.captured == 0 and outcome.failed == {} and outcome.ignored == [("m-1", outcome.ignored[0][1])]
    assert outcome.ignored[0][1].startswith(reason)


@pytest.mark.parametrize("key,reason", [
    ("report.pdf", "not under a user's folder"), ("ann/", "not under a user's folder"),
    ("ann/folder/", "a folder marker"), ("./x.pdf", "not under a user's folder"),
])
def test_keys_outside_any_users_folder_are_dropped(engine, key, reason):
    event = s3_event(engine.settings.source_bucket, key, now(), size=1, etag="e")
    outcome = capture(engine, [record(event, "m-1")])
    assert outcome.ignored == [("m-1", reason)] and not outcome.failed and not outcome.segments


def test_another_buckets_event_is_dropped(engine):
    event = s3_event("someone-elses-bucket", "ann/a.pdf", now(), size=1, etag="e")
    assert parse_event(record(event), engine.settings.source_bucket).startswith("another bucket")


def test_an_object_deleted_before_capture_is_recorded_as_such_never_as_content(engine):
    event = put_event(engine, "eve", "tmp.txt", b"short-lived", now())
    engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key="eve/tmp.txt", VersionId=event["detail"]["object"]["version-id"])
    outcome = capture(engine, [record(event)])
    assert outcome.captured == 1 and not outcome.failed
    result = view(engine, "eve")
    assert result.manifest.entries == {} and result.manifest.skipped == {"tmp.txt": DELETED_BEFORE_CAPTURE}
    [ref] = journal.list_segments(engine.s3, engine.settings.backup_bucket, "eve")
    assert journal.read_segment(engine.s3, engine.settings.backup_bucket, ref.key).hashes() == set()


def test_an_unversioned_object_overwritten_before_capture_keeps_the_journal_consistent(engine):
    engine.s3.put_bucket_versioning(Bucket=engine.settings.source_bucket, VersioningConfiguration={"Status": "Suspended"})
    stale = put_event(engine, "fay", "a.txt", b"old", now())
    stale["detail"]["object"].pop("version-id", None)
    fresh = put_event(engine, "fay", "a.txt", b"new", now() + timedelta(seconds=1))
    fresh["detail"]["object"].pop("version-id", None)
    outcome = capture(engine, [record(stale)])
    assert outcome.captured == 1
    assert view(engine, "fay").manifest.skipped == {"a.txt": OVERWRITTEN_BEFORE_CAPTURE}
    capture(engine, [record(fresh)])
    assert restored(engine, view(engine, "fay", now() + timedelta(seconds=2)).manifest) == {"a.txt": b"new"}


def test_a_permanently_deleted_version_shows_the_key_as_s3_then_shows_it(engine):
    older = put_event(engine, "gus", "a.txt", b"older", now() - timedelta(seconds=10))
    newer = put_event(engine, "gus", "a.txt", b"newer", now() - timedelta(seconds=5))
    engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key="gus/a.txt",
                            VersionId=newer["detail"]["object"]["version-id"])
    removed = s3_event(engine.settings.source_bucket, "gus/a.txt", now(), deleted=True,
                       version_id=newer["detail"]["object"]["version-id"], deletion_type="Permanently Deleted")
    capture(engine, [record(older), record(newer), record(removed)])
    assert restored(engine, view(engine, "gus").manifest) == {"a.txt": b"older"}    # the older version shows again


def test_a_large_object_without_a_stored_checksum_is_left_to_the_nightly_run(engine):
    engine.settings = engine.settings.with_(capture_max_hash_bytes=1024)
    event = put_event(engine, "hal", "big.bin", b"x" * (9 * 1024 * 1024), now())
    outcome = capture(engine, [record(event)])
    assert outcome.captured == 1
    assert view(engine, "hal").manifest.skipped == {"big.bin": LEFT_TO_NIGHTLY}


def test_a_poison_event_fails_alone_and_its_neighbours_are_captured(engine):
    good = put_event(engine, "ivy", "ok.txt", b"fine", now())
    poison = s3_event(engine.settings.source_bucket, "ivy/broken.txt", now(), size=4, etag="e", version_id="v-nope")
    engine.s3.put_object(Bucket=engine.settings.source_bucket, Key="ivy/broken.txt", Body=b"data")
    # A version the bucket never had answers NoSuchVersion: recorded as gone, not retried forever.
    outcome = capture(engine, [record(good, "m-good"), record(poison, "m-poison")])
    assert outcome.captured == 2 and not outcome.failed
    assert view(engine, "ivy").manifest.skipped == {"broken.txt": DELETED_BEFORE_CAPTURE}


def test_an_error_on_one_change_reports_only_its_message_failed(engine):
    from botocore.stub import Stubber
    from backup_cfn.engine.settings import Clients

    from backup_cfn import aws
    good = put_event(engine, "jo", "ok.txt", b"fine", now())
    s3 = aws.client(engine.env, "s3")
    stubber = Stubber(s3)
    stubber.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503,
                             service_message="Please reduce your request rate.")
    stubber.activate()
    clients = Clients(s3=s3, dynamodb=engine.clients.dynamodb, sqs=engine.clients.sqs, sns=engine.clients.sns)
    outcome = capture_batch(clients, engine.settings, [record(good, "m-1")])
    assert list(outcome.failed) == ["m-1"] and "SlowDown" in outcome.failed["m-1"] and outcome.segments == []
    # Offered again (SQS redelivers it), it is captured.
    assert capture(engine, [record(good, "m-1", receive_count=2)]).captured == 1


def test_an_invocation_out_of_time_records_nothing_and_fails_every_message(engine):
    from backup_cfn.engine.attempts import Deadline

    event = put_event(engine, "kai", "a.txt", b"data", now())
    spent = Deadline(lambda: 0, engine.settings)             # Lambda's time is up
    outcome = capture(engine, [record(event, "m-1")], deadline=spent)
    assert list(outcome.failed) == ["m-1"] and outcome.segments == []
    assert journal.list_segments(engine.s3, engine.settings.backup_bucket, "kai") == []


def test_a_burst_is_flagged_once_per_window_per_user(engine):
    settings = engine.settings.with_(burst_changes=100)
    assert [count_burst(engine.clients.dynamodb, settings, "lee", n) for n in (60, 30, 20, 500)] == [
        False, False, True, False]
    assert count_burst(engine.clients.dynamodb, settings, "mo", 99) is False


def test_a_user_rewriting_many_files_at_once_is_captured_in_bounded_segments_and_alarmed(engine):
    engine.settings = engine.settings.with_(burst_changes=200)
    moment = now()
    for i in range(300):
        put(engine, "ned", f"docs/{i:04d}.txt", f"file {i}".encode())
    for i in range(300):
        put(engine, "ned", f"docs/{i:04d}.txt", f"ENCRYPTED {i}".encode())
    from handlers import capture as capture_handler   # noqa: F401 - the drain invokes it
    stats = capture_queue(engine, batch_size=250)
    assert stats.messages == 600 and stats.failed == 0
    segments = journal.list_segments(engine.s3, engine.settings.backup_bucket, "ned")
    sizes = [len(journal.read_segment(engine.s3, engine.settings.backup_bucket, s.key).changes) for s in segments]
    assert sum(sizes) == 600 and max(sizes) <= 250
    # Before the rewrite, nothing of ned's existed yet: the view is empty, not an error.
    assert view(engine, "ned", moment - timedelta(seconds=1)).manifest.entries == {}
    after = restored(engine, view(engine, "ned").manifest)
    assert after == source_state(engine, "ned") and len(after) == 300


def test_the_journal_segment_names_exactly_the_content_it_references(engine):
    event = put_event(engine, "ola", "a.txt", b"alpha", now())
    capture(engine, [record(event)])
    [ref] = journal.list_segments(engine.s3, engine.settings.backup_bucket, "ola")
    segment = journal.read_segment(engine.s3, engine.settings.backup_bucket, ref.key)
    assert segment.hashes() == {sha(b"alpha")} and segment.key() == ref.key
    [change] = segment.changes
    assert (change.op, change.path, change.sha256, change.size) == (PUT, "a.txt", sha(b"alpha"), 5)
    # Written once: the same batch again is the same key, refused by If-None-Match, and fine.
    assert journal.write_segment(engine.s3, engine.settings.backup_bucket, segment, engine.settings.sse()) == ref.key
    versions = engine.s3.list_object_versions(Bucket=engine.settings.backup_bucket, Prefix=ref.key)["Versions"]
    assert len(versions) == 1


def test_the_handler_reports_a_failed_change_and_times_its_next_delivery(engine):
    """ReportBatchItemFailures: the failed message is listed; it comes back after the retry delay
    (30 s), and after its last delivery at once, for SQS to dead-letter it on the next receive."""
    import json

    from botocore.stub import Stubber

    from backup_cfn import aws
    from backup_cfn.engine.settings import Clients
    from backup_cfn.local.runner import LambdaContext, sqs_event
    from handlers import capture as capture_handler, runtime

    sqs, url = engine.clients.sqs, engine.settings.capture_queue_url
    event = put_event(engine, "pia", "report.pdf", b"fine", now())
    sqs.purge_queue(QueueUrl=url)
    for _ in range(2):     # the same change, offered twice: on its first delivery, and on its last
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = aws.client(engine.env, "s3")
    stubber = Stubber(s3)
    for _ in range(2):
        stubber.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503,
                                 service_message="Please reduce your request rate.")
    stubber.activate()
    runtime.configure(Clients(s3=s3, dynamodb=engine.clients.dynamodb, sqs=sqs, sns=engine.clients.sns),
                      engine.settings)

    def deliver(receive_count: int) -> tuple[dict, str]:
        [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        batch = sqs_event([message], arn, "us-east-1")
        batch["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        return capture_handler.handler(batch, LambdaContext(function_name="capture")), message["MessageId"]

    response, message_id = deliver(1)
    assert response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    response, message_id = deliver(5)
    assert response == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    # The first back in 30 s; the last-delivered one visible at once (the next receive dead-letters it).
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("1", "1")


def test_a_change_whose_reads_keep_failing_is_dead_lettered_and_the_nightly_run_backs_it_up(engine):
    """A poison change: S3 fails every read of it. Each delivery reports it failed; after its fifth
    the capture queue's redrive policy moves it to the dead-letter queue (alarmed); the next nightly
    run finds the change the journal lacks, records it and counts it missed."""
    from botocore.stub import Stubber

    from backup_cfn import aws, contract
    from backup_cfn.engine.settings import Clients
    from backup_cfn.local.runner import LambdaContext, sqs_event
    from handlers import capture as capture_handler, runtime

    sqs, url = engine.clients.sqs, engine.settings.capture_queue_url
    put(engine, "quin", "notes.pdf", b"notes")
    assert backup(engine)["status"] == runs.SUCCEEDED
    sqs.purge_queue(QueueUrl=url)                    # run 1 holds what the events announced
    put(engine, "quin", "report.pdf", b"unreadable for now")   # its event: S3 -> EventBridge -> the queue
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = aws.client(engine.env, "s3")
    stubber = Stubber(s3)
    for _ in range(contract.CAPTURE_MAX_RECEIVES):
        stubber.add_client_error("get_object", service_error_code="InternalError", http_status_code=500,
                                 service_message="We encountered an internal error. Please try again.")
    stubber.activate()
    runtime.configure(Clients(s3=s3, dynamodb=engine.clients.dynamodb, sqs=sqs, sns=engine.clients.sns),
                      engine.settings)
    for delivery in range(1, contract.CAPTURE_MAX_RECEIVES + 1):
        [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        AttributeNames=["All"])["Messages"]
        assert message["Attributes"]["ApproximateReceiveCount"] == str(delivery)
        response = capture_handler.handler(sqs_event([message], arn, "us-east-1"), LambdaContext(function_name="capture"))
        assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        # The retry delay passes (the last delivery already made it visible at once).
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    stubber.assert_no_pending_responses()
    # The sixth receive finds it past maxReceiveCount: SQS moves it to the dead-letter queue.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    dead = sqs.receive_message(QueueUrl=engine.settings.capture_dead_letter_queue_url, MaxNumberOfMessages=10)
    assert [json.loads(m["Body"])["detail"]["object"]["key"] for m in dead["Messages"]] == ["quin/report.pdf"]
    assert journal.list_segments(engine.s3, engine.settings.backup_bucket, "quin") == []
    # The next night, the change is older than the RPO target: the run reads it, records it, counts it.
    engine.clock.advance(days=1)
    night = backup(engine)
    assert night["status"] == runs.SUCCEEDED and night["changes_missed"] == 1
    assert restored(engine, view(engine, "quin", engine.clock()).manifest) == {
        "notes.pdf": b"notes", "report.pdf": b"unreadable for now"}
