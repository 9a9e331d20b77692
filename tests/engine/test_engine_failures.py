"""Each bad input has a defined outcome: malformed messages reach the dead-letter queue, unknown
users are skipped with a reason, vanished objects are left out with a reason, throttling is
retried and, past the queue's receive limit, recorded as a failed user."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from backup_cfn.engine import naming, runs
from backup_cfn.engine.errors import RetryableJobError
from backup_cfn.engine.initiator import start_run
from backup_cfn.engine.manifest import read_manifest
from backup_cfn.engine.settings import Clients
from backup_cfn.engine.worker import Job, handle_message
from backup_cfn.local.runner import drain_queue
from handlers import runtime, worker as worker_handler

from engine_support import backup, context, load_event, put, sqs_record_event

DATA = b"%PDF-1.7 report " * 100


def test_malformed_messages_are_reported_failed_each_time(engine):
    runtime.configure(engine.clients, engine.settings)
    event = load_event("sqs_malformed_jobs.json")
    response = worker_handler.handler(event, context())
    assert response == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


MALFORMED = ("not json", json.dumps({"version": 1, "run_id": "20261125T020000Z", "user": "a/b"}))


def test_malformed_messages_end_in_the_dead_letter_queue(engine):
    """SQS's own redrive, with the dead-letter consumer off: the runner polls on until the job queue
    is empty, so the receive after the last delivery, which moves a message, always happens."""
    sqs = engine.clients.sqs
    for body in MALFORMED:
        sqs.send_message(QueueUrl=engine.settings.job_queue_url, MessageBody=body)
    report = drain_queue(engine.clients, engine.settings, run_id=None, threads=2, dead_letters=False)
    assert report.invocations == 2 * engine.settings.job_max_receives
    dlq = engine.outputs["JobDeadLetterQueueUrl"]
    received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert sorted(m["Body"] for m in received) == sorted(MALFORMED)


def test_the_dead_letter_consumer_takes_malformed_messages_off_the_dead_letter_queue(engine):
    sqs = engine.clients.sqs
    for body in MALFORMED:
        sqs.send_message(QueueUrl=engine.settings.job_queue_url, MessageBody=body)
    report = drain_queue(engine.clients, engine.settings, run_id=None, threads=2)
    assert sorted(report.dead_lettered) == sorted(MALFORMED)
    dlq = engine.outputs["JobDeadLetterQueueUrl"]
    assert sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []) == []


def test_unknown_user_is_skipped_with_a_recorded_reason(engine):
    put(engine, "known", "a.pdf", DATA)
    run = backup(engine, users=["known", "nobody"])
    assert run["status"] == runs.SUCCEEDED
    assert (run["users_done"], run["users_skipped"], run["users_failed"]) == (1, 1, 0)
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run["run_id"], "nobody")
    assert job["status"] == runs.SKIPPED
    assert job["reason"] == "no objects under 'nobody/' in the source bucket (unknown user)"


def test_object_deleted_between_listing_and_reading_is_left_out_with_a_reason(engine):
    put(engine, "jill", "keep.pdf", DATA)
    put(engine, "jill", "gone.pdf", DATA + b"gone")
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)

    def delete_after_listing(step):
        if step == "listed":
            engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key="jill/gone.pdf")

    outcome = handle_message(engine.clients, engine.settings, Job(run_id, "jill").body(), hook=delete_after_listing)
    assert outcome.status == runs.COMPLETED and outcome.stats["objects_skipped"] == 1
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("jill", run_id))
    assert list(manifest.entries) == ["keep.pdf"]
    assert manifest.skipped == {"gone.pdf": "vanished: deleted after the listing"}


def stubbed_s3_clients(engine, error_code: str, message: str, status: int) -> tuple[Clients, Stubber]:
    """Real DynamoDB/SQS on the emulator; an S3 client answering the read of the listed object (a GET,
    as it was uploaded without a checksum) with AWS's throttling error, after an empty journal."""
    from backup_cfn import aws
    s3 = aws.client(engine.env, "s3")
    stubber = Stubber(s3)
    stubber.add_response("list_objects_v2", {"KeyCount": 0, "IsTruncated": False})            # kim's journal
    stubber.add_response("list_objects_v2", {"KeyCount": 1, "IsTruncated": False, "Contents": [
        {"Key": "kim/a.pdf", "Size": len(DATA), "ETag": '"e1"',
         "LastModified": engine.clock(), "StorageClass": "STANDARD"}]})                    # source
    stubber.add_client_error("get_object", service_error_code=error_code, service_message=message,
                             http_status_code=status)
    stubber.activate()
    return Clients(s3=s3, dynamodb=engine.clients.dynamodb, sqs=engine.clients.sqs, sns=engine.clients.sns), stubber


def test_s3_slowdown_fails_the_message_for_retry_and_releases_the_job(engine):
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id, users=["kim"])
    clients, stubber = stubbed_s3_clients(engine, "SlowDown", "Please reduce your request rate.", 503)
    runtime.configure(clients, engine.settings)
    response = worker_handler.handler(sqs_record_event(Job(run_id, "kim").body(), receive_count=1), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    stubber.assert_no_pending_responses()
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "kim")
    # The first delivery failed before it needed a lease (reading comes first): the error is noted
    # and no attempt holds the job, so the redelivered message starts at once and succeeds.
    assert job.get("status") is None and "SlowDown" in job["last_error"]
    put(engine, "kim", "a.pdf", DATA)
    outcome = handle_message(engine.clients, engine.settings, Job(run_id, "kim").body(), receive_count=2)
    assert outcome.status == runs.COMPLETED
    assert runs.get_run(engine.clients.dynamodb, engine.settings, run_id)["status"] == runs.SUCCEEDED


def test_throttling_on_the_last_delivery_records_the_user_failed_and_closes_the_run(engine):
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id, users=["kim"])
    clients, _ = stubbed_s3_clients(engine, "SlowDown", "Please reduce your request rate.", 503)
    runtime.configure(clients, engine.settings)
    last = engine.settings.job_max_receives
    response = worker_handler.handler(sqs_record_event(Job(run_id, "kim").body(), receive_count=last), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}  # on to the dead-letter queue
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "kim")
    assert job["status"] == runs.FAILED and "SlowDown" in job["reason"]
    record = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (record["status"], record["users_failed"], record["users_pending"]) == (runs.PARTIAL, 1, 0)


def test_dynamodb_throughput_exceeded_fails_the_message_and_writes_nothing(engine):
    from backup_cfn import aws
    put(engine, "lou", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)
    dynamodb = aws.client(engine.env, "dynamodb")
    stubber = Stubber(dynamodb)
    stubber.add_client_error("get_item", service_error_code="ProvisionedThroughputExceededException",
                             service_message="The level of configured provisioned throughput for the table was exceeded.",
                             http_status_code=400)
    stubber.activate()
    runtime.configure(Clients(s3=engine.s3, dynamodb=dynamodb, sqs=engine.clients.sqs), engine.settings)
    response = worker_handler.handler(sqs_record_event(Job(run_id, "lou").body()), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "lou") is None
    listed = engine.s3.list_objects_v2(Bucket=engine.settings.backup_bucket)
    assert listed["KeyCount"] == 0


def test_a_job_for_an_unknown_run_is_invalid(engine):
    runtime.configure(engine.clients, engine.settings)
    response = worker_handler.handler(sqs_record_event(Job("20200101T000000Z", "x").body()), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert runs.get_user_job(engine.clients.dynamodb, engine.settings, "20200101T000000Z", "x") is None


# --- a closing transaction that overlaps another on the run's record -------------------------------

def _conflicting_transactions(client, times: int) -> list:
    """The first `times` TransactWriteItems answered as DynamoDB answers a transaction that overlaps
    another one on the same item (its CancellationReasons name TransactionConflict)."""
    seen: list = []

    def conflict(**_):
        seen.append(True)
        if len(seen) <= times:
            raise ClientError({"Error": {"Code": "TransactionCanceledException",
                                         "Message": "Transaction cancelled, please refer cancellation reasons for "
                                                    "specific reasons [None, TransactionConflict]"},
                               "CancellationReasons": [{"Code": "None"},
                                                       {"Code": "TransactionConflict",
                                                        "Message": "Transaction is ongoing for the item"}],
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "TransactWriteItems")
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict)
    return seen


def test_a_transaction_conflict_on_the_run_record_is_retried_in_place_after_a_short_backoff(engine):
    from backup_cfn import aws
    put(engine, "tia", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id, users=["tia"])
    dynamodb = aws.client(engine.env, "dynamodb")
    tries = _conflicting_transactions(dynamodb, times=2)
    sleeps: list[float] = []
    settings = engine.settings.with_(sleep=sleeps.append)
    clients = Clients(s3=engine.s3, dynamodb=dynamodb, sqs=engine.clients.sqs, sns=engine.clients.sns)

    outcome = handle_message(clients, settings, Job(run_id, "tia").body(), receive_count=1)

    # Recorded on the first delivery: two conflicts, two short waits (50 ms then 100 ms, jittered), a third try.
    assert outcome.status == runs.COMPLETED and len(tries) >= 3
    assert len(sleeps) == 2 and 0.025 <= sleeps[0] <= 0.05 and 0.05 <= sleeps[1] <= 0.1
    assert runs.get_run(engine.clients.dynamodb, engine.settings, run_id)["status"] == runs.SUCCEEDED


def test_a_conflict_that_does_not_clear_is_left_to_the_queues_retry(engine):
    from backup_cfn import aws
    put(engine, "tom", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id, users=["tom"])
    dynamodb = aws.client(engine.env, "dynamodb")
    _conflicting_transactions(dynamodb, times=1000)
    sleeps: list[float] = []
    settings = engine.settings.with_(sleep=sleeps.append)
    clients = Clients(s3=engine.s3, dynamodb=dynamodb, sqs=engine.clients.sqs, sns=engine.clients.sns)

    with pytest.raises(RetryableJobError, match="recording was cancelled"):
        handle_message(clients, settings, Job(run_id, "tom").body(), receive_count=1)
    assert len(sleeps) == runs.CONFLICT_RETRIES and sum(sleeps) < 2 * 6.4
    assert runs.get_run(engine.clients.dynamodb, engine.settings, run_id)["users_done"] == 0
