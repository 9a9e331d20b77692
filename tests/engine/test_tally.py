"""The run's counters and its closing without a hot item (engine/tally.py): exact counts and one
close under AWS's TransactionConflict and throttling answers, first through botocore's Stubber
with AWS's response shapes, then on the emulator with many jobs finishing at once behind a client
that answers a share of requests the way DynamoDB does when it cancels or throttles them."""
from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from backup_cfn import aws, contract
from backup_cfn.engine import naming, runs, tally
from backup_cfn.engine.contentstore import to_item
from backup_cfn.engine.errors import RetryableJobError
from backup_cfn.engine.settings import Settings

from engine_support import make_engine

RUN = "20261125T020000Z"
CONFLICT = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
THROTTLED = {"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity for one or more "
                                                   "global secondary indexes. DynamoDB is automatically scaling"}


# --- through botocore's Stubber, with AWS's shapes ---------------------------------------------------

@pytest.fixture
def stubbed():
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sent: list[dict] = []
    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems",
                                lambda params, **_: sent.append(json.loads(json.dumps(params))))
    table = f"runs-{uuid.uuid4().hex[:8]}"     # the layout cache is per table and record
    sleeps: list[float] = []
    settings = Settings("src", "bak", table, "idx", sleep=sleeps.append, random=lambda: 1.0)
    with Stubber(client) as stub:
        yield client, stub, settings, sent, sleeps


def _header(table: str, shards: int = 4, status: str = runs.IN_PROGRESS) -> dict:
    return to_item({contract.RUNS_PARTITION_KEY: RUN, contract.RUNS_SORT_KEY: "RUN", "status": status,
                    "shards": shards, "users_total": 3})


def _tally(shard: int, **counts) -> dict:
    values = {name: 0 for name in tally.USER_COUNTERS + runs.STAT_FIELDS} | counts
    return to_item({contract.RUNS_PARTITION_KEY: f"{RUN}#{shard:02d}", contract.RUNS_SORT_KEY: "TALLY", **values})


def _cancelled(*reasons) -> dict:
    codes = ", ".join(r.get("Code", "None") for r in reasons)
    return {"service_error_code": "TransactionCanceledException", "http_status_code": 400,
            "service_message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            "response_meta": {}, "modeled_fields": {"CancellationReasons": list(reasons)}}


def _expect_layout(stub, settings, shards: int = 4) -> None:
    stub.add_response("get_item", {"Item": _header(settings.runs_table, shards)},
                      {"TableName": settings.runs_table, "Key": naming.run_key(RUN), "ConsistentRead": True})


def test_a_conflict_or_a_throttled_item_is_sent_again_with_the_same_change_and_counted_once(stubbed):
    client, stub, settings, sent, sleeps = stubbed
    _expect_layout(stub, settings)
    stub.add_client_error("transact_write_items", **_cancelled({"Code": "None"}, CONFLICT))
    stub.add_client_error("transact_write_items", **_cancelled(THROTTLED, {"Code": "None"}))
    stub.add_response("transact_write_items", {})

    closed = runs.finish_job(client, settings, RUN, "ana", None, runs.COMPLETED, {"files_total": 3})

    assert closed is None
    stub.assert_no_pending_responses()
    assert len(sent) == 3 and len(sleeps) == 2
    changes = [item["TransactItems"][1]["Update"]["ExpressionAttributeValues"] for item in sent]
    assert all(c[":users_pending"] == {"N": "-1"} and c[":users_done"] == {"N": "1"} and c[":files_total"] == {"N": "3"}
               for c in changes)
    # The tally is the user's shard's, in the shard's own partition, beside the user's record.
    user_key = sent[0]["TransactItems"][0]["Update"]["Key"]
    tally_key = sent[0]["TransactItems"][1]["Update"]["Key"]
    shard = tally.shard_of("ana", 4)
    assert user_key == {"run_id": {"S": f"{RUN}#{shard:02d}"}, "item": {"S": "USER#ana"}}
    assert tally_key == {"run_id": {"S": f"{RUN}#{shard:02d}"}, "item": {"S": "TALLY"}}
    assert sent[0]["TransactItems"][0]["Update"]["ExpressionAttributeNames"]["#s"] == "job_status"


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttling_past_the_sdks_retries_fails_the_attempt_and_counts_nothing(stubbed, code):
    client, stub, settings, sent, _ = stubbed
    _expect_layout(stub, settings)
    stub.add_client_error("transact_write_items", service_error_code=code, http_status_code=400,
                          service_message="Rate of requests exceeds the allowed throughput.")
    with pytest.raises(ClientError) as raised:
        runs.finish_job(client, settings, RUN, "bo", None, runs.COMPLETED, {})
    assert raised.value.response["Error"]["Code"] == code
    stub.assert_no_pending_responses()   # no second transaction, no close: the SQS retry does it again
    assert len(sent) == 1


def test_conflicts_that_do_not_clear_fail_the_attempt_after_the_in_place_retries(stubbed):
    client, stub, settings, sent, sleeps = stubbed
    _expect_layout(stub, settings)
    for _ in range(runs.CONFLICT_RETRIES + 1):
        stub.add_client_error("transact_write_items", **_cancelled({"Code": "None"}, CONFLICT))
    with pytest.raises(RetryableJobError, match="TransactionConflict"):
        runs.finish_job(client, settings, RUN, "cy", None, runs.COMPLETED, {})
    assert len(sent) == runs.CONFLICT_RETRIES + 1 and len(sleeps) == runs.CONFLICT_RETRIES


def _refused_by(position: int, items: int, item: dict | None = None) -> dict:
    reasons = [{"Code": "None"}] * items
    reasons[position] = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed",
                         **({"Item": item} if item else {})}
    return _cancelled(*reasons)


def test_a_job_that_empties_its_shard_takes_it_off_the_header_and_reads_nothing(stubbed):
    client, stub, settings, sent, _ = stubbed
    shard = tally.shard_of("di", 4)
    _expect_layout(stub, settings)
    # The optimistic condition refuses: this job takes its shard's pending count to zero.
    stub.add_client_error("transact_write_items", **_refused_by(1, 2, _tally(shard, users_pending=1, users_done=4)))
    stub.add_response("transact_write_items", {})

    assert runs.finish_job(client, settings, RUN, "di", None, runs.COMPLETED, {"files_total": 2}) is None

    stub.assert_no_pending_responses()      # no read of the tallies: other shards are still open
    first, second = sent
    assert "NOT (users_pending <= :one_left)" in first["TransactItems"][1]["Update"]["ConditionExpression"]
    header = second["TransactItems"][2]["Update"]
    assert header["Key"] == naming.run_key(RUN) and header["UpdateExpression"] == "ADD shards_open :minus_one"
    assert header["ConditionExpression"] == "attribute_exists(#pk) AND shards_open > :one"


def test_the_job_that_empties_the_last_shard_commits_then_closes_the_run_once(stubbed):
    client, stub, settings, sent, _ = stubbed
    shard = tally.shard_of("di", 4)
    _expect_layout(stub, settings)
    stub.add_client_error("transact_write_items", **_refused_by(1, 2, _tally(shard, users_pending=1, users_done=4)))
    stub.add_client_error("transact_write_items", **_refused_by(2, 3))    # the last open shard
    stub.add_response("transact_write_items", {})
    stub.add_response("get_item", {"Item": _header(settings.runs_table)})
    others = [_tally(k, users_done=1 if k != shard else 5, files_total=2) for k in range(4)]
    stub.add_response("batch_get_item", {"Responses": {settings.runs_table: others}})
    stub.add_response("update_item", {}, {
        "TableName": settings.runs_table, "Key": naming.run_key(RUN), "UpdateExpression": ANY,
        "ConditionExpression": "#s = :seen", "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": ANY})

    closed = runs.finish_job(client, settings, RUN, "di", None, runs.COMPLETED, {"files_total": 2})

    stub.assert_no_pending_responses()
    assert closed["status"] == runs.SUCCEEDED and closed["users_done"] == 8 and closed["files_total"] == 8
    assert [s["TransactItems"][-1]["Update"]["ConditionExpression"] for s in sent[1:]] == [
        "attribute_exists(#pk) AND shards_open > :one", "attribute_exists(#pk)"]
    # Each try carries the same change: counted once, whichever try commits.
    assert {s["TransactItems"][1]["Update"]["ExpressionAttributeValues"][":users_done"]["N"] for s in sent} == {"1"}


def test_a_job_enqueued_last_of_its_shard_empties_it_in_one_transaction(stubbed):
    client, stub, settings, sent, _ = stubbed
    _expect_layout(stub, settings)
    stub.add_response("transact_write_items", {})

    assert runs.finish_job(client, settings, RUN, "di", None, runs.COMPLETED, {"files_total": 2}, probably_last=True) is None

    stub.assert_no_pending_responses()      # one try; no read of the tallies: other shards are still open
    only, = sent
    assert only["TransactItems"][1]["Update"]["ConditionExpression"] == "attribute_exists(#pk) AND users_pending <= :one_left"
    assert only["TransactItems"][2]["Update"]["ConditionExpression"] == "attribute_exists(#pk) AND shards_open > :one"


def test_a_job_enqueued_last_that_does_not_empty_its_shard_commits_optimistically(stubbed):
    client, stub, settings, sent, _ = stubbed
    shard = tally.shard_of("di", 4)
    _expect_layout(stub, settings)
    # The guess is wrong (another job of its shard is still pending): the tally refuses, the header is untouched.
    stub.add_client_error("transact_write_items", **_refused_by(1, 3, _tally(shard, users_pending=2, users_done=3)))
    stub.add_response("transact_write_items", {})

    assert runs.finish_job(client, settings, RUN, "di", None, runs.COMPLETED, {"files_total": 2}, probably_last=True) is None

    stub.assert_no_pending_responses()
    first, second = sent
    assert len(first["TransactItems"]) == 3 and len(second["TransactItems"]) == 2
    assert "NOT (users_pending <= :one_left)" in second["TransactItems"][1]["Update"]["ConditionExpression"]
    assert {s["TransactItems"][1]["Update"]["ExpressionAttributeValues"][":users_done"]["N"] for s in sent} == {"1"}


def test_a_job_enqueued_last_of_the_last_open_shard_commits_then_closes(stubbed):
    client, stub, settings, sent, _ = stubbed
    shard = tally.shard_of("di", 4)
    _expect_layout(stub, settings)
    stub.add_client_error("transact_write_items", **_refused_by(2, 3))    # the last open shard
    stub.add_response("transact_write_items", {})
    stub.add_response("get_item", {"Item": _header(settings.runs_table)})
    others = [_tally(k, users_done=1 if k != shard else 5, files_total=2) for k in range(4)]
    stub.add_response("batch_get_item", {"Responses": {settings.runs_table: others}})
    stub.add_response("update_item", {}, {
        "TableName": settings.runs_table, "Key": naming.run_key(RUN), "UpdateExpression": ANY,
        "ConditionExpression": "#s = :seen", "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": ANY})

    closed = runs.finish_job(client, settings, RUN, "di", None, runs.COMPLETED, {"files_total": 2}, probably_last=True)

    stub.assert_no_pending_responses()
    assert closed["status"] == runs.SUCCEEDED and closed["users_done"] == 8
    assert [s["TransactItems"][-1]["Update"]["ConditionExpression"] for s in sent] == [
        "attribute_exists(#pk) AND shards_open > :one", "attribute_exists(#pk)"]


def test_a_close_another_caller_won_is_not_made_twice(stubbed):
    client, stub, settings, _, _ = stubbed
    tallies = [_tally(k) for k in range(4)]
    stub.add_response("get_item", {"Item": _header(settings.runs_table)})
    stub.add_response("batch_get_item", {"Responses": {settings.runs_table: tallies}})
    stub.add_client_error("update_item", service_error_code="ConditionalCheckFailedException", http_status_code=400,
                          service_message="The conditional request failed")
    stub.add_response("get_item", {"Item": _header(settings.runs_table, status=runs.SUCCEEDED)})
    assert runs.close_run(client, settings, RUN) is None
    stub.assert_no_pending_responses()


def test_a_shard_whose_tally_is_not_yet_read_is_read_again(stubbed):
    """BatchGetItem may leave keys unprocessed (throttling, size): the close check reads them again
    before deciding, so a shard still pending is never missed."""
    client, stub, settings, _, _ = stubbed
    stub.add_response("get_item", {"Item": _header(settings.runs_table)})
    keys = tally.Layout(RUN, shards=4).tally_keys()
    stub.add_response("batch_get_item", {"Responses": {settings.runs_table: [_tally(k) for k in range(3)]},
                                         "UnprocessedKeys": {settings.runs_table: {"Keys": [keys[3]],
                                                                                   "ConsistentRead": True}}})
    stub.add_response("batch_get_item", {"Responses": {settings.runs_table: [_tally(3, users_pending=1)]}})
    assert runs.close_run(client, settings, RUN) is None
    stub.assert_no_pending_responses()


# --- on the emulator: many jobs finishing at once, conflicts and throttling injected ---------------

class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_):
        yield self._data


class DynamoDbTrouble:
    """A before-send hook answering a share of DynamoDB requests as DynamoDB does when it refuses
    them (the request never reaches the emulator, as a refused one changes nothing on AWS): a
    transaction cancelled for a conflict or a throttled item, with its CancellationReasons, and any
    request throttled outright (which the SDK's standard retries take first)."""

    def __init__(self, rate: float, seed: int):
        self.rate, self.rng, self.lock = rate, random.Random(seed), threading.Lock()
        self.injected: Counter = Counter()

    def attach(self, client) -> None:
        client.meta.events.register("before-send.dynamodb", self._before_send)

    def _before_send(self, request, event_name: str, **_):
        operation = event_name.split(".")[-1]
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            kind = self.rng.choice(("conflict", "throttled-item", "throttled")) \
                if operation == "TransactWriteItems" else "throttled"
            self.injected[kind] += 1
        if kind == "throttled":
            body = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded."}
        else:
            items = len(json.loads(request.body)["TransactItems"])
            reasons = [{"Code": "None"}] * items
            reasons[self.rng.randrange(items)] = CONFLICT if kind == "conflict" else THROTTLED
            body = {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                    "CancellationReasons": reasons}
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0",
                                              "x-amzn-RequestId": "INJECTED"}, _Body(json.dumps(body).encode()))


@pytest.fixture
def engine(local_env):
    return make_engine(local_env)


def _troubled(engine, rate: float, seed: int):
    client = aws.client(engine.env, "dynamodb")
    trouble = DynamoDbTrouble(rate, seed)
    trouble.attach(client)
    return client, trouble


def _finish_until_recorded(dynamodb, settings, run_id, user, status, stats, closes: list, probably_last=False) -> None:
    """One job's recording as its deliveries would retry it: a failed attempt is tried again."""
    for _ in range(20):
        try:
            closed = runs.finish_job(dynamodb, settings, run_id, user, None, status, stats, probably_last=probably_last)
        except (RetryableJobError, ClientError):
            continue
        except runs.JobNotRecorded:
            closed = runs.close_run(dynamodb, settings, run_id)    # a redelivery of a recorded job
        if closed is not None:
            closes.append(closed)
        return
    raise AssertionError(f"{user} was never recorded")


@pytest.mark.parametrize("shards", [4, 0])   # 0: a run recorded before the tallies (counters on the header)
def test_many_jobs_at_once_under_conflicts_and_throttling_count_exactly_and_close_once(engine, shards):
    settings = engine.settings.with_(sleep=lambda _: None)
    users = [f"u{i:03d}" for i in range(48)]
    runs.create_run(engine.clients.dynamodb, settings, RUN, users, "manual", shards=shards)
    runs.mark_enqueued(engine.clients.dynamodb, settings, RUN)
    dynamodb, trouble = _troubled(engine, 0.3, seed=shards + 1)
    failing = set(users[::8])
    guessed = set(users[2::3])    # told they are probably their shard's last: mostly wrong guesses
    closes: list = []
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda u: _finish_until_recorded(
            dynamodb, settings, RUN, u, runs.FAILED if u in failing else runs.COMPLETED, {"files_total": 2}, closes,
            probably_last=u in guessed), users))
    assert set(trouble.injected) == {"conflict", "throttled-item", "throttled"} and sum(trouble.injected.values()) > 10
    assert len(closes) == 1 and closes[0]["status"] == runs.PARTIAL
    record = runs.get_run(engine.clients.dynamodb, settings, RUN)
    assert (record["users_done"], record["users_failed"], record["users_pending"]) == (42, 6, 0)
    assert record["files_total"] == 84 and record["status"] == runs.PARTIAL
    jobs = runs.user_jobs(engine.clients.dynamodb, settings, RUN)
    assert [j["user"] for j in jobs] == users and all(j["run_id"] == RUN for j in jobs)

    # The failed jobs, redriven from the dead-letter queue, succeed: the run is re-closed once.
    closes.clear()
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda u: _finish_until_recorded(dynamodb, settings, RUN, u, runs.COMPLETED,
                                                       {"files_total": 2}, closes), sorted(failing)))
    assert len(closes) == 1 and closes[0]["status"] == runs.SUCCEEDED
    record = runs.get_run(engine.clients.dynamodb, settings, RUN)
    assert (record["users_done"], record["users_failed"], record["files_total"]) == (48, 0, 96)


def test_user_records_stay_out_of_the_status_index_and_in_their_shards(engine):
    users = [f"v{i}" for i in range(10)]
    runs.create_run(engine.clients.dynamodb, engine.settings, RUN, users, "manual", shards=8)
    runs.mark_enqueued(engine.clients.dynamodb, engine.settings, RUN)
    closes: list = []
    for user in users:
        _finish_until_recorded(engine.clients.dynamodb, engine.settings, RUN, user, runs.COMPLETED, {}, closes)
    assert [c["status"] for c in closes] == [runs.SUCCEEDED]
    by_status = engine.clients.dynamodb.query(
        TableName=engine.settings.runs_table, IndexName=contract.RUNS_BY_STATUS_INDEX,
        KeyConditionExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": runs.COMPLETED}})["Items"]
    assert by_status == []
    assert [r["run_id"] for r in runs.recent_runs(engine.clients.dynamodb, engine.settings)] == [RUN]
    history = runs.user_history(engine.clients.dynamodb, engine.settings, "v3")
    assert [(h["run_id"], h["status"]) for h in history] == [(RUN, runs.COMPLETED)]
    layout = runs.run_layout(engine.clients.dynamodb, engine.settings, RUN)
    stored = {u: engine.clients.dynamodb.get_item(TableName=engine.settings.runs_table, Key=layout.user_key(u))["Item"]
              for u in users}
    partitions = {item["run_id"]["S"] for item in stored.values()}
    assert layout.shards == 8 and len(partitions) > 1 and all(p.startswith(f"{RUN}#") for p in partitions)
    assert all("status" not in item and item["job_status"]["S"] == runs.COMPLETED for item in stored.values())


def test_a_job_that_died_between_recording_and_closing_is_closed_by_its_redelivery(engine):
    """The close is a second write after the job's transaction: a death between the two leaves the
    message, whose next delivery finds the job done and closes the run."""
    from backup_cfn.engine.worker import Job, handle_message
    from engine_support import put

    put(engine, "ed", "a.pdf", b"report")
    from backup_cfn.engine.initiator import start_run

    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id, users=["ed"])

    class Died(Exception):
        pass

    original = runs.close_run

    def die(*args, **kwargs):
        raise Died()

    runs.close_run = die
    try:
        with pytest.raises(Died):
            handle_message(engine.clients, engine.settings, Job.for_run(run_id, "ed", None).body())
    finally:
        runs.close_run = original
    assert runs.get_run(engine.clients.dynamodb, engine.settings, run_id)["status"] == runs.IN_PROGRESS
    outcome = handle_message(engine.clients, engine.settings, Job.for_run(run_id, "ed", None).body(), receive_count=2)
    assert outcome.status == "DUPLICATE" and outcome.finalized_run["status"] == runs.SUCCEEDED
    assert runs.get_run(engine.clients.dynamodb, engine.settings, run_id)["users_done"] == 1


def test_a_run_has_a_shard_per_32_users_up_to_the_contracts_number():
    assert [tally.shards_for(n) for n in (0, 1, 32, 33, 1000, 100_000)] == [1, 1, 1, 2, 32, contract.RUN_TALLY_SHARDS]
    # Stable across processes (not Python's salted hash), and spread.
    assert tally.shard_of("client-0001", 64) == int(hashlib.sha256(b"client-0001").hexdigest()[:8], 16) % 64
    assert len({tally.shard_of(f"client-{i:04d}", 64) for i in range(1000)}) == 64
