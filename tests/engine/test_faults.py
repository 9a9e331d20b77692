"""Faults over whole runs, on the emulator: throttling injected on a share of every S3 and
DynamoDB call, two initiators for one schedule at once, two collectors at once, and a poison job
among good ones.

Already covered elsewhere (not repeated here): one throttled call failing a message and being
retried (test_engine_failures.py::test_s3_slowdown_fails_the_message_for_retry_and_releases_the_job,
::test_dynamodb_throughput_exceeded_fails_the_message_and_writes_nothing), throttling on the last
delivery recording the user FAILED (::test_throttling_on_the_last_delivery_records_the_user_failed_and_closes_the_run),
malformed messages reaching the DLQ (::test_malformed_messages_end_in_the_dead_letter_queue),
a crash after each worker step (test_engine_concurrency.py::test_retry_after_a_crash_at_each_worker_step_reaches_the_same_state),
the same schedule event handled twice in a row (test_engine_cycle.py::test_a_retried_schedule_event_does_not_enqueue_twice)
and a collector racing workers (test_engine_property.py).
"""
from __future__ import annotations

import json
import random
import threading
from collections import Counter

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from backup_cfn import aws
from backup_cfn.engine import naming, runs
from backup_cfn.engine.contentstore import STORED
from backup_cfn.engine.initiator import handle_schedule_event, scheduled_event
from backup_cfn.engine.manifest import list_manifests
from backup_cfn.engine.pruner import prune
from backup_cfn.engine.restore import load_for_restore, restore_to_directory
from backup_cfn.engine.settings import Clients
from backup_cfn.engine.verify import verify
from backup_cfn.local.runner import drain_queue, invoke_initiator

from engine_support import all_content_versions, backup, make_engine, put, sha, source_state

SHARED = b"%PDF-1.7 standard terms " * 300


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_):
        yield self._data


class Throttler:
    """A botocore before-send hook answering a share of requests, chosen by a seeded RNG, with
    the error AWS sends when throttling: S3 `503 SlowDown` (no body on HEAD, as S3 does) and
    DynamoDB `400 ProvisionedThroughputExceededException`. The request never reaches the
    emulator, as a throttled request never changes anything on AWS."""

    S3_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
               b"<Message>Please reduce your request rate.</Message><RequestId>THROTTLE</RequestId>"
               b"<HostId>injected</HostId></Error>")
    DYNAMODB_BODY = json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
                   "Consider increasing your provisioning level with the UpdateTable API."}).encode()

    def __init__(self, rate: float, seed: int):
        self.rate, self.rng = rate, random.Random(seed)
        self.lock = threading.Lock()
        self.sent: Counter = Counter()
        self.throttled: Counter = Counter()

    def attach(self, client, service: str) -> None:
        client.meta.events.register(f"before-send.{service}", self._before_send)

    def _before_send(self, request, event_name: str, **_):
        _, service, operation = event_name.split(".")
        with self.lock:
            self.sent[service] += 1
            if self.rng.random() >= self.rate:
                return None
            self.throttled[service] += 1
        if service == "s3":
            body = b"" if operation == "HeadObject" else self.S3_BODY
            return AWSResponse(request.url, 503, {"Content-Type": "application/xml", "x-amz-request-id": "THROTTLE"},
                               _Body(body))
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0",
                                              "x-amzn-RequestId": "THROTTLE"}, _Body(self.DYNAMODB_BODY))


def throttled_engine(local_env, throttler: Throttler, *, client_config: Config | None = None, **overrides):
    """An engine whose S3 and DynamoDB clients (workers, initiator and the runner's polling alike)
    are throttled; SQS and SNS are not."""
    engine = make_engine(local_env, **overrides)

    def client(service):
        if client_config is None:
            return aws.client(engine.env, service)
        return boto3.client(service, region_name=engine.env.region, endpoint_url=engine.env.endpoint_url,
                            config=client_config, **aws.LOCAL_CREDENTIALS)

    s3, dynamodb = client("s3"), client("dynamodb")
    throttler.attach(s3, "s3")
    throttler.attach(dynamodb, "dynamodb")
    throttled = Clients(s3=s3, dynamodb=dynamodb, sqs=engine.clients.sqs, sns=engine.clients.sns)
    return engine, throttled


def populate(engine, users: int, files: int) -> dict[str, bytes]:
    """Each user: the shared terms plus `files` own files (half uploaded with a SHA-256)."""
    contents = {}
    for u in range(users):
        user = f"t-{u:02d}"
        put(engine, user, "terms.pdf", SHARED)
        contents[f"{user}/terms.pdf"] = SHARED
        for j in range(files):
            data = b"PK\x03\x04 %s sheet %d " % (user.encode(), j) * 40
            put(engine, user, f"sheets/{j}.xlsx", data, checksum=j % 2 == 0)
            contents[f"{user}/sheets/{j}.xlsx"] = data
    return contents


def assert_everything_stored_once(engine, run: dict, contents: dict[str, bytes], users: int, tmp_path, *,
                                  exact_bytes_new: bool = True) -> None:
    assert run["status"] == runs.SUCCEEDED
    assert (run["users_done"], run["users_failed"], run["users_skipped"]) == (users, 0, 0)
    for u in range(users):
        job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run["run_id"], f"t-{u:02d}")
        assert job["status"] == runs.COMPLETED
    distinct = {sha(data) for data in contents.values()}
    versions = all_content_versions(engine)
    assert versions == {naming.content_key(h): 1 for h in distinct}      # one object version per content
    index = engine.clients.dynamodb.scan(TableName=engine.settings.content_table, ConsistentRead=True)["Items"]
    assert sorted(i["content_hash"]["S"] for i in index) == sorted(distinct)
    assert {i["state"]["S"] for i in index} == {STORED}
    if exact_bytes_new:
        assert run["bytes_new"] == sum(len(next(d for d in contents.values() if sha(d) == h)) for h in distinct)
    # Every snapshot restores byte for byte.
    for u in range(users):
        user = f"t-{u:02d}"
        manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, user)
        report = restore_to_directory(engine.s3, engine.settings.backup_bucket, manifest, tmp_path / user)
        assert report.ok
        restored = {p.relative_to(tmp_path / user).as_posix(): p.read_bytes()
                    for p in (tmp_path / user).rglob("*") if p.is_file()}
        assert restored == source_state(engine, user)


def test_a_run_with_a_tenth_of_all_calls_throttled_backs_up_every_user_once(local_env, tmp_path):
    """The clients as the functions build them (standard retry mode, 10 attempts): the SDK absorbs
    the throttling with its own back-off."""
    throttler = Throttler(rate=0.10, seed=2026)
    engine, clients = throttled_engine(local_env, throttler)
    contents = populate(engine, users=12, files=3)
    moment = engine.clock()
    invoke_initiator(clients, engine.settings, moment, None)
    drain_queue(clients, engine.settings, run_id=naming.run_id_for(moment), threads=4)
    run = runs.get_run(engine.clients.dynamodb, engine.settings, naming.run_id_for(moment))
    assert min(throttler.throttled["s3"], throttler.throttled["dynamodb"]) >= 3, throttler.throttled
    assert_everything_stored_once(engine, run, contents, 12, tmp_path)


def test_throttling_past_the_sdk_retries_is_retried_by_redelivery_to_the_same_end_state(local_env, tmp_path):
    """Two SDK attempts only, so about one call in a hundred fails outright: the job fails, its
    lease is released and the runner delivers the message again, as SQS would after the
    visibility timeout (the clock moves on by it after each batch). One poller and one job thread,
    so the seeded RNG throttles the same calls on every run of the test."""
    throttler = Throttler(rate=0.10, seed=7)
    engine, clients = throttled_engine(local_env, throttler, client_config=Config(
        retries={"total_max_attempts": 2, "mode": "standard"}), job_threads=1, claim_wait_seconds=0.2)
    contents = populate(engine, users=20, files=2)
    moment = engine.clock()
    run_id = naming.run_id_for(moment)
    invoke_initiator(clients, engine.settings, moment, None)
    drain_queue(clients, engine.settings, run_id=run_id, threads=1,
                on_batch=lambda: engine.clock.advance(seconds=engine.settings.stale_after_seconds + 1))
    run = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    attempts = [int(runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, f"t-{u:02d}")["attempts"])
                for u in range(20)]
    assert max(attempts) > 1, "no job was redelivered: the injection did not reach the jobs"
    # bytes_new is not checked here: a retry that finds the content its dead attempt copied counts
    # it as already stored, so the run's figure can fall short of the bytes it stored (storage is
    # still exactly once, checked below).
    assert_everything_stored_once(engine, run, contents, 20, tmp_path, exact_bytes_new=False)


def run_twice_at_once(call) -> tuple[list, list[Exception]]:
    """Run `call` on two threads at once; its results and the exceptions it raised."""
    results, errors = [], []

    def one():
        try:
            results.append(call())
        except Exception as exc:  # noqa: BLE001 - the caller asserts on them
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_two_initiators_for_the_same_schedule_at_once_back_up_each_user_once(local_env):
    """On AWS the initiator runs single-instance (reserved concurrency 1), so a duplicate schedule
    event is handled after the first, which enqueues nothing (test_engine_cycle.py::
    test_a_retried_schedule_event_does_not_enqueue_twice). Run at the same instant, as the engine
    alone allows, the one that does not create the run sees it still ENQUEUING and enqueues too;
    the duplicate messages then find each job leased or done, so every user is still backed up
    once and counted once."""
    from backup_cfn.stack.functions import INITIATOR
    assert INITIATOR.reserved_concurrency == 1
    engine = make_engine(local_env)
    for u in range(7):
        put(engine, f"i-{u}", "a.pdf", SHARED + bytes([u]))
    event = scheduled_event(engine.clock(), manual=False)
    barrier = threading.Barrier(2)

    def start():
        barrier.wait()
        return handle_schedule_event(engine.clients, engine.settings, event)

    results, errors = run_twice_at_once(start)
    assert errors == []
    assert sorted(r.created for r in results) == [False, True]
    assert {r.run_id for r in results} == {naming.run_id_for(engine.clock())}
    assert 7 <= sum(r.enqueued for r in results) <= 14
    run_id = results[0].run_id
    drain_queue(engine.clients, engine.settings, run_id=None, threads=2)
    run = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (run["status"], run["users_total"], run["users_done"], run["users_pending"]) == (runs.SUCCEEDED, 7, 7, 0)
    assert run["files_total"] == 7
    for u in range(7):
        assert len(list_manifests(engine.s3, engine.settings.backup_bucket, f"i-{u}")) == 1
        job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, f"i-{u}")
        assert (job["status"], int(job["attempts"])) == (runs.COMPLETED, 1)
    assert set(all_content_versions(engine).values()) == {1} and len(all_content_versions(engine)) == 7


def test_two_collectors_at_once_delete_only_unreferenced_content_once(local_env, tmp_path):
    engine = make_engine(local_env, retention_days=3)
    old = {f"g-{u}": b"%%PDF-1.7 old %d " % u * 200 for u in range(6)}
    for user, data in old.items():
        put(engine, user, "report.pdf", data)
        put(engine, user, "terms.pdf", SHARED)
    assert backup(engine)["status"] == runs.SUCCEEDED
    engine.clock.advance(days=1)
    for u, user in enumerate(old):
        if u % 2 == 0:          # half the users revise their report; the old version expires later
            put(engine, user, "report.pdf", b"%%PDF-1.7 new %d " % u * 200)
    assert backup(engine)["status"] == runs.SUCCEEDED
    engine.clock.advance(days=10)
    assert backup(engine)["status"] == runs.SUCCEEDED       # the newest snapshot of every user
    expected = sorted(sha(old[user]) for u, user in enumerate(old) if u % 2 == 0)

    barrier = threading.Barrier(2)
    reports, errors = run_twice_at_once(lambda: prune(engine.clients, engine.settings, before_mark=barrier.wait))
    assert errors == []
    deleted = [h for r in reports for h in r.content_deleted]
    assert sorted(deleted) == expected                     # each deleted once, by one of the two
    assert sum(r.content_raced for r in reports) == len(expected)   # the other lost the conditional mark
    for user in old:     # day 1's snapshot is the checkpoint before the 3-day window, and the newest
        assert len(list_manifests(engine.s3, engine.settings.backup_bucket, user)) == 2
    assert verify(engine.clients, engine.settings, sample_percent=100, seed=3).ok
    for user in old:
        manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, user)
        report = restore_to_directory(engine.s3, engine.settings.backup_bucket, manifest, tmp_path / user)
        assert report.ok and report.files == 2
        assert {p.name: p.read_bytes() for p in (tmp_path / user).iterdir()} == source_state(engine, user)


def test_a_poison_job_reaches_the_dead_letter_queue_with_a_reason_and_blocks_no_one(local_env):
    """One user's objects can never be read (the worker is denied them, e.g. encrypted with a key
    it may not use). Its message fails on each of the queue's deliveries and then moves to the
    DLQ; the job is recorded FAILED with the reason; the other users complete on their first
    attempt and the run closes PARTIAL.

    This test used to fail one run in five: SQS (and moto) moves a message to the dead-letter queue
    on the receive that follows its last delivery, and the old runner stopped polling as soon as
    the run closed, so the move happened only when another polling thread received once more first.
    The runner now polls, as Lambda's pollers do, until the job queue is empty (the move always
    happens), and the dead-letter queue is read with a long poll. The dead-letter consumer is off
    here, so the message stays where SQS put it."""
    engine = make_engine(local_env)
    users = ["p-a", "p-b", "poison", "p-c", "p-d"]
    for user in users:
        put(engine, user, "a.pdf", SHARED + user.encode())

    def deny(params, **_):
        if "/poison/" in params.get("url_path", ""):
            return AWSResponse(None, 403, {}, None), {
                "Error": {"Code": "AccessDenied", "Message": "User is not authorized to perform: kms:Decrypt"},
                "ResponseMetadata": {"HTTPStatusCode": 403}}
        return None

    for operation in ("HeadObject", "GetObject"):
        engine.clients.s3.meta.events.register(f"before-call.s3.{operation}", deny)
    moment = engine.clock()
    run_id = naming.run_id_for(moment)
    invoke_initiator(engine.clients, engine.settings, moment, users)
    report = drain_queue(engine.clients, engine.settings, run_id=run_id, threads=2, dead_letters=False)

    run = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (run["status"], run["users_done"], run["users_failed"], run["users_pending"]) == (runs.PARTIAL, 4, 1, 0)
    poison = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "poison")
    assert poison["status"] == runs.FAILED and "AccessDenied" in poison["reason"]
    assert int(poison["attempts"]) == engine.settings.job_max_receives
    for user in users:
        if user != "poison":
            job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, user)
            assert (job["status"], int(job["attempts"])) == (runs.COMPLETED, 1)
    assert report.invocations == 4 + engine.settings.job_max_receives    # one job a delivery
    dlq = engine.outputs["JobDeadLetterQueueUrl"]
    received = engine.clients.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10,
                                                  WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["user"] for m in received] == ["poison"]
    assert list_manifests(engine.s3, engine.settings.backup_bucket, "poison") == []
