"""The timing AWS really has (issue 11), on the emulator with the local runner's scaled-down
deadlines and SQS's own visibility timeouts: every job ends in a recorded state whatever kills it,
a failed job is retried after its backoff, a user too large for one invocation is split and
resumed, `run` invokes the initiator asynchronously and follows the run with a deadline, priority
users are all enqueued first.

Each finding's test fails on the engine before this change (checked by running this file with the
engine, handlers and initiator of `main` in place: see the issue's closing note).
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from rich.console import Console

from backup_cfn import aws, contract
from backup_cfn.config import load_environment
from backup_cfn.engine import attempts, naming, runs
from backup_cfn.engine.initiator import start_run
from backup_cfn.engine.manifest import read_manifest
from backup_cfn.engine.settings import utc_now
from backup_cfn.engine.worker import Job
from backup_cfn.errors import RunStuck
from backup_cfn.local.runner import drain_queue, invoke, invoke_initiator
from backup_cfn.ops import run as run_module
from backup_cfn.ops.runs import runs_document, tables
from backup_cfn.ops.target import DeployedEnvironment

from engine_support import all_content_versions, make_engine, put, sha

DATA = b"%PDF-1.7 timing " * 40
DEADLINE = 1.5          # the scaled-down function timeout (AWS: 900 s)


def timed_engine(local_env, **overrides):
    """An engine on real time (leases, retries and visibility all run on the wall clock), its
    lease lasting a scaled-down invocation. The hand-on reserve is half the invocation here (a
    tenth, at most a minute, on AWS): on a loaded 2-core machine an emulator round trip can take
    a good part of a 1.5-second deadline."""
    engine = make_engine(local_env, **overrides)
    engine.settings = engine.settings.with_(clock=utc_now, stale_after_seconds=DEADLINE + 1,
                                            handoff_reserve_share=0.5, list_page_size=100)
    engine.clock = None
    return engine


def summaries(engine) -> tuple[str, callable]:
    sqs = engine.clients.sqs
    url = sqs.create_queue(QueueName=f"{engine.settings.runs_table}-summaries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    engine.clients.sns.subscribe(TopicArn=engine.settings.topic_arn, Protocol="sqs", Endpoint=arn)

    def subjects() -> list[str]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"])["Subject"] for m in messages]
    return url, subjects


# --- finding 1: a job killed at its timeout on every delivery is still recorded ---------------------

def test_a_job_killed_on_every_delivery_is_recorded_failed_its_run_closes_partial_and_a_redrive_completes_it(local_env):
    engine = timed_engine(local_env)
    _, subjects = summaries(engine)
    for user in ("k-a", "k-b", "hang"):
        put(engine, user, "a.pdf", DATA + user.encode())
    hanging = threading.Event()
    hanging.set()

    def hang(params, **_):
        if "/hang/" in params.get("url_path", "") and hanging.is_set():
            time.sleep(DEADLINE * 2)     # past the deadline: Lambda kills the invocation here
    engine.s3.meta.events.register("before-call.s3.GetObject", hang)

    moment = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = naming.run_id_for(moment)
    invoke_initiator(engine.clients, engine.settings, moment, None)
    report = drain_queue(engine.clients, engine.settings, threads=2, timeout_seconds=DEADLINE, give_up_after=120)

    assert report.killed == engine.settings.job_max_receives            # every delivery of "hang" killed
    assert [json.loads(b)["user"] for b in report.dead_lettered] == ["hang"]
    run = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (run["status"], run["users_done"], run["users_failed"], run["users_pending"]) == (runs.PARTIAL, 2, 1, 0)
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "hang")
    assert job["status"] == runs.FAILED
    assert job["reason"] == f"dead-lettered after 5 deliveries: {attempts_killed_reason()}"
    assert subjects() == [f"backup-cfn {engine.settings.stack_name}: run {run_id} PARTIAL"]

    # Redriven from the dead-letter queue once the cause is gone: the job completes, the counters
    # move back from failed to done, and the run is announced again, now SUCCEEDED.
    hanging.clear()
    engine.clients.sqs.send_message(QueueUrl=engine.settings.job_queue_url, MessageBody=report.dead_lettered[0])
    drain_queue(engine.clients, engine.settings, threads=1, timeout_seconds=DEADLINE, give_up_after=60)
    run = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (run["status"], run["users_done"], run["users_failed"], run["users_pending"]) == (runs.SUCCEEDED, 3, 0, 0)
    assert runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "hang")["status"] == runs.COMPLETED
    assert subjects() == [f"backup-cfn {engine.settings.stack_name}: run {run_id} SUCCEEDED"]


def attempts_killed_reason() -> str:
    from backup_cfn.engine.deadletters import KILLED
    return KILLED


def test_the_dead_letter_consumer_leaves_a_job_a_live_attempt_holds(local_env):
    """A duplicate message dead-lettered while the original's attempt still works: the consumer does
    not record a failure over it, and looks again later."""
    from backup_cfn.engine.deadletters import JobStillHeld, record_dead_letter
    engine = timed_engine(local_env)
    run_id = naming.run_id_for(datetime.now(timezone.utc))
    start_run(engine.clients, engine.settings, run_id, users=["liv"])
    assert attempts.acquire_lease(engine.clients.dynamodb, engine.settings, run_id, "liv", "live-attempt")
    with pytest.raises(JobStillHeld):
        record_dead_letter(engine.clients, engine.settings, Job(run_id, "liv").body())
    assert runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "liv")["status"] == runs.RUNNING


# --- finding 2: a failed job is retried after its backoff, within seconds here, minutes on AWS ------

def test_a_failed_job_comes_back_after_its_retry_delay_not_the_queues_visibility(local_env):
    engine = timed_engine(local_env, retry_base_seconds=2, retry_max_seconds=2)
    put(engine, "slow", "a.pdf", DATA)
    reads: list[float] = []

    def throttle_first_read(params, **_):
        if "/slow/" in params.get("url_path", ""):
            reads.append(time.monotonic())
            if len(reads) == 1:
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                                   "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")
    engine.s3.meta.events.register("before-call.s3.GetObject", throttle_first_read)

    moment = datetime.now(timezone.utc).replace(microsecond=0)
    invoke_initiator(engine.clients, engine.settings, moment, None)
    report = drain_queue(engine.clients, engine.settings, threads=1, timeout_seconds=DEADLINE, give_up_after=30)

    run = runs.get_run(engine.clients.dynamodb, engine.settings, naming.run_id_for(moment))
    assert run["status"] == runs.SUCCEEDED and report.invocations == 2
    waited = reads[1] - reads[0]
    # The delay for a first failure is 1 or 2 s here (base 2 s, jitter between half and all);
    # the queue's own visibility timeout, which applied before, is 90 minutes.
    assert 0.9 <= waited <= 2 + 1.5, waited
    assert contract.JOB_VISIBILITY_SECONDS == 5400


def test_retry_delays_double_with_jitter_up_to_the_cap_and_bound_every_job_well_inside_the_alarm(local_env):
    from backup_cfn.engine.settings import Settings
    settings = Settings("s", "b", "r", "c")
    assert [attempts.retry_delay_bound(settings, n) for n in range(1, 7)] == [60, 120, 240, 480, 900, 900]
    low, high = settings.with_(random=lambda: 0.0), settings.with_(random=lambda: 0.999999)
    assert [attempts.retry_delay(low, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert [attempts.retry_delay(high, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    # While an attempt runs, its message stays hidden until its deadline plus the delay; on the
    # last delivery only the base delay more (the next receive moves it to the dead-letter queue).
    assert attempts.visibility_while_running(high, 1, 899.2) == 900 + 60
    assert attempts.visibility_while_running(high, 5, 899.2) == 900 + 60
    assert attempts.visibility_after_failure(high, 2) == 120 and attempts.visibility_after_failure(high, 5) == 0
    # The worst case with the defaults, from a job's first delivery to its recorded outcome: five
    # deliveries each killed at 900 s (and polled 20 s later), four delays at their bound, the last
    # visibility's base delay, a poll of the dead-letter queue and the consumer's timeout.
    worst = attempts.worst_case_outcome_seconds(settings)
    assert worst == 5 * (900 + 20) + (60 + 120 + 240 + 480) + 60 + 20 + 60 == 5640
    assert worst < 26 * 3600 / 10        # about 94 minutes against the 26-hour alarm


# --- finding 3: `run` invokes the initiator asynchronously and follows the run with a deadline ----

def test_run_on_aws_invokes_asynchronously_and_lists_the_stuck_users_at_its_deadline(local_env, monkeypatch):
    engine = make_engine(local_env)
    env = dataclasses.replace(load_environment("dev"), endpoint_url="")
    target = DeployedEnvironment(env, engine.clients, engine.settings,
                                 {**engine.outputs, contract.OUTPUT_INITIATOR: "backup-cfn-dev-initiator"})
    moment = engine.clock()
    run_id = naming.run_id_for(moment)
    lambda_client = aws.client(local_env, "lambda")
    stubber = Stubber(lambda_client)
    stubber.add_response("invoke", {"StatusCode": 202},
                         {"FunctionName": "backup-cfn-dev-initiator", "InvocationType": "Event", "Payload": ANY})
    stubber.activate()

    def accepted(env, service, region=None):
        # Lambda accepted the event: the initiator records the run and enqueues; no worker runs.
        start_run(engine.clients, engine.settings, run_id, users=["stuck-1", "stuck-2"])
        return lambda_client
    monkeypatch.setattr(aws, "client", accepted)
    monkeypatch.setattr(run_module, "AWS_POLL_SECONDS", 0.05)
    console = Console(record=True, width=200)
    with pytest.raises(RunStuck, match=f"run {run_id} made no progress for 1 s; 2 user\\(s\\) still pending"):
        run_module.run_backup(target, runner=run_module.run_on_aws, users=["stuck-1", "stuck-2"], console=console, moment=moment, timeout=1)
    stubber.assert_no_pending_responses()
    shown = console.export_text()
    assert "users still pending" in shown and "stuck-1" in shown and "stuck-2" in shown and "not started" in shown


def test_the_default_deadline_comes_from_the_timeouts_and_the_retry_schedule(local_env):
    engine = make_engine(local_env, retry_base_seconds=60, retry_max_seconds=900)
    assert run_module.default_timeout(engine.settings) == attempts.worst_case_outcome_seconds(engine.settings) == 5640


def test_runs_shows_a_run_that_outlived_its_deadline_as_stalled_with_its_pending_users(local_env):
    engine = make_engine(local_env)
    put(engine, "done-1", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id, users=["done-1", "late-1"])
    from backup_cfn.engine.worker import handle_message
    handle_message(engine.clients, engine.settings, Job(run_id, "done-1").body())
    attempts.note_error(engine.clients.dynamodb, engine.settings, run_id, "late-1", "SlowDown: Please reduce")
    target = DeployedEnvironment(local_env, engine.clients, engine.settings, engine.outputs)

    def shown(**kwargs) -> str:
        console = Console(record=True, width=200)
        for table in tables(*runs_document(target, **kwargs)):
            console.print(table)
        return console.export_text()

    assert "IN_PROGRESS" in shown() and "STALLED" not in shown()
    engine.clock.advance(seconds=attempts.worst_case_outcome_seconds(engine.settings) + 1)
    assert "STALLED" in shown()
    one = shown(run_id=run_id)
    assert "STALLED" in one and "late-1" in one and "SlowDown" in one and "done-1" not in one.split("pending")[-1]


# --- finding 4: a user too large for one invocation is split, resumed, and stays incremental -------

def test_a_user_with_thousands_of_objects_is_split_over_invocations_and_survives_a_kill_mid_continuation(local_env):
    engine = timed_engine(local_env, job_threads=8)
    objects = {f"reports/{i:04d}.pdf": b"%%PDF-1.7 big user report %d " % (i % 100) * 30 for i in range(1200)}
    for path, data in objects.items():
        put(engine, "big", path, data, checksum=path.endswith(("0.pdf", "5.pdf")))
    killed_once = []

    def kill_mid_continuation(params, **_):
        # The first read of an object deep in the listing: inside a continuation, not the first chunk.
        if params.get("url_path", "").endswith("/big/reports/1111.pdf") and not killed_once:
            killed_once.append(True)
            time.sleep(DEADLINE * 2)
    engine.s3.meta.events.register("before-call.s3.GetObject", kill_mid_continuation)

    moment = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = naming.run_id_for(moment)
    invoke_initiator(engine.clients, engine.settings, moment, None)
    report = drain_queue(engine.clients, engine.settings, threads=1, timeout_seconds=DEADLINE, give_up_after=600)

    run = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "big")
    assert run["status"] == runs.SUCCEEDED and job["status"] == runs.COMPLETED and killed_once
    # Our kill, and on a loaded machine perhaps an invocation that overran its reserve: each is
    # retried from its part.
    assert report.killed >= 1 and report.invocations >= 3, report
    assert int(job["next_part"]) >= 2                      # the chain it took: parts 0..next_part-1
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("big", run_id))
    assert {p: e.sha256 for p, e in manifest.entries.items()} == {p: sha(d) for p, d in objects.items()}
    assert manifest.stats["files_total"] == 1200 and run["files_total"] == 1200
    distinct = {sha(d) for d in objects.values()}
    assert all_content_versions(engine) == {naming.content_key(h): 1 for h in distinct}   # each stored once

    # The next run is incremental: one invocation, only the changed objects read. Its invocation
    # gets a generous timeout: listing 1,200 objects on a 2-core machine under load can take longer
    # than the scaled-down one, and what this asserts is the work, not the machine's speed.
    changed = {f"reports/{i:04d}.pdf": b"%%PDF-1.7 revised %d" % i for i in (3, 700, 1100)}
    for path, data in changed.items():
        put(engine, "big", path, data)
    later = moment.replace(hour=(moment.hour + 1) % 24) if moment.hour < 23 else moment.replace(minute=59, second=59)
    invoke_initiator(engine.clients, engine.settings, later, None)
    report = drain_queue(engine.clients, engine.settings, threads=1, timeout_seconds=DEADLINE * 20, give_up_after=120)
    second = runs.get_run(engine.clients.dynamodb, engine.settings, naming.run_id_for(later))
    assert second["status"] == runs.SUCCEEDED and report.invocations == 1
    assert (second["files_changed"], second["bytes_read"]) == (3, sum(len(d) for d in changed.values()))


def test_an_object_too_large_for_one_invocation_is_named_in_a_failed_job_and_the_rest_is_kept(local_env):
    engine = make_engine(local_env, max_hash_bytes=2000)
    put(engine, "huge", "small.pdf", DATA[:500])
    put(engine, "huge", "video.mov", b"\0" * 3000)                       # no SHA-256 stored: must be read
    put(engine, "huge", "scan.tif", b"\1" * 3000, checksum=True)         # S3 keeps its SHA-256: no read
    run_id = naming.run_id_for(engine.clock())
    invoke_initiator(engine.clients, engine.settings, engine.clock(), None)
    drain_queue(engine.clients, engine.settings, threads=1)
    job = runs.get_user_job(engine.clients.dynamodb, engine.settings, run_id, "huge")
    assert job["status"] == runs.FAILED
    assert job["reason"].startswith("video.mov: too large to hash in one invocation: 0.0 GiB and no SHA-256 stored")
    assert "every other file is in the snapshot" in job["reason"]
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("huge", run_id))
    assert sorted(manifest.entries) == ["scan.tif", "small.pdf"] and list(manifest.skipped) == ["video.mov"]
    assert runs.get_run(engine.clients.dynamodb, engine.settings, run_id)["status"] == runs.PARTIAL


# --- the runner kills the way Lambda does ---------------------------------------------------------

def test_a_killed_invocation_makes_no_aws_call_after_its_deadline_and_runs_no_handler_of_its_own(local_env):
    engine = make_engine(local_env)
    seen = []

    def handler(event, context):
        try:
            time.sleep(0.6)
            engine_clients = __import__("handlers.runtime", fromlist=["get"]).get()[0]
            engine_clients.s3.put_object(Bucket=engine.settings.source_bucket, Key="late/effect", Body=b"x")
        except Exception:   # noqa: BLE001 - what a handler's own error handling would see: nothing
            seen.append("except")
        finally:
            seen.append("finally")

    outcome = invoke(handler, {}, engine.clients, engine.settings, function="worker", timeout_seconds=0.2)
    assert not outcome.finished
    time.sleep(0.8)
    assert seen == ["finally"]          # the abandoned thread ran on, but its call never left
    listed = engine.s3.list_objects_v2(Bucket=engine.settings.source_bucket, Prefix="late/")
    assert listed["KeyCount"] == 0


# --- finding 6: every priority user is enqueued before anyone else ---------------------------------

def test_every_priority_user_is_enqueued_before_any_other(local_env):
    """25 priority users (three batches of ten) and 30 others: every batch of priority users is
    confirmed sent before the first batch of the others goes out. (Delivery order on a standard
    queue is then best effort: SQS does not promise first-in, first-out.)"""
    priority = tuple(f"vip-{i:02d}" for i in range(25))
    engine = make_engine(local_env, priority_users=priority)
    sends: list[tuple[float, float, bool]] = []
    lock = threading.Lock()
    original = engine.clients.sqs.send_message_batch

    def send_message_batch(**kwargs):
        began = time.monotonic()
        time.sleep(0.02)   # a real round trip's worth, so sends that overlap are seen to overlap
        result = original(**kwargs)
        vip = {json.loads(e["MessageBody"])["user"].startswith("vip-") for e in kwargs["Entries"]}
        with lock:
            sends.append((began, time.monotonic(), vip == {True}))
        return result
    engine.clients.sqs.send_message_batch = send_message_batch

    others = [f"user-{i:02d}" for i in range(30)]
    result = start_run(engine.clients, engine.settings, naming.run_id_for(engine.clock()),
                       users=others + list(priority))
    assert result.enqueued == 55
    vip_sends = [s for s in sends if s[2]]
    other_sends = [s for s in sends if not s[2]]
    assert len(vip_sends) == 3 and len(other_sends) == 3
    assert max(end for _, end, _ in vip_sends) <= min(began for began, _, _ in other_sends)
