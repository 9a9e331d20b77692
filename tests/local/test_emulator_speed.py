"""The emulator's speed patches (docs/emulator.md: core, serving, sqs, dynamodb's expression cache;
the S3 listing in test_emulator_listing.py): AWS's answers through boto3 against the session's
emulator, the same answers as stock moto 5.2.5 where moto has quirks of its own, and, counted in
a process of its own with and without each patch (tests/local/emulator_costs.py), the per-request work
each one removes, so that a patch that silently stopped applying fails here."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from moto import mock_aws

from backup_cfn import aws

COSTS = Path(__file__).resolve().parent / "emulator_costs.py"


# --- the work each patch removes, counted ---------------------------------------------------------

@pytest.fixture(scope="module")
def costs() -> dict:
    """{"stock": counts, "patched": counts} from tests/local/emulator_costs.py, one process each, side by side."""
    processes = {variant: subprocess.Popen([sys.executable, str(COSTS), variant], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True) for variant in ("stock", "patched")}
    counted = {}
    for variant, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        counted[variant] = json.loads(out)
    return counted


def test_a_receive_send_and_attributes_read_the_clock_per_message_returned_not_per_message_queued(costs):
    # 300 messages queued; one ReceiveMessage of 10, one SendMessageBatch of 10, one GetQueueAttributes.
    assert costs["stock"]["sqs_clock_reads"] > 10_000
    assert costs["patched"]["sqs_clock_reads"] < 1_000


def test_a_prefix_listing_does_not_walk_the_bucket(costs):
    # 2,000 keys in 200 prefixes; one ListObjectsV2 of one prefix (10 keys).
    assert costs["stock"]["s3_keys_visited"] >= 2_000
    assert costs["patched"]["s3_keys_visited"] == 0


def test_a_repeated_update_expression_is_parsed_and_checked_once(costs):
    # 40 UpdateItems and 10 TransactWriteItems with the same UpdateExpression.
    assert costs["stock"]["dynamodb_parses"]["parses"] >= 100
    assert costs["patched"]["dynamodb_parses"]["parses"] == 1
    assert costs["stock"]["dynamodb_parses"]["expression_checks"] >= 150  # three validators a request
    assert costs["patched"]["dynamodb_parses"]["expression_checks"] == 3
    # Each pass of the validators over the tree builds its processing map once, not once per node.
    assert costs["stock"]["dynamodb_parses"]["processing_maps_built"] >= 5_000
    assert costs["patched"]["dynamodb_parses"]["processing_maps_built"] <= 10 * 60


def test_an_item_is_written_without_motos_member_by_member_serializer(costs):
    # 10 GetItems of a 20-attribute item.
    assert costs["stock"]["dynamodb_serialized_attribute_values"] >= 200
    assert costs["patched"]["dynamodb_serialized_attribute_values"] == 0


def test_dynamodb_answers_are_the_same_bytes_with_the_fast_serializer(costs):
    # 60 random items (every type, nested maps and lists, binary, unicode): put, get, update,
    # query, scan, batch and transactional reads; the raw JSON of every answer, hashed.
    assert costs["stock"]["dynamodb_bodies"] == costs["patched"]["dynamodb_bodies"]
    assert costs["patched"]["dynamodb_bodies"].endswith(" 245")


def test_dynamodb_requests_are_atomic_as_on_aws(costs):
    # 800 concurrent ADDs to one counter; 8 threads claiming the same 30 keys (only if absent).
    assert costs["patched"]["dynamodb_races"] == {"count": 800, "claims": 30}
    # Stock moto loses updates here most of the time (737-786 of 800 in three tries), but not on
    # every run (a run with little thread switching loses none): that is why the patch exists, not
    # an outcome to assert.


def test_sqs_deletes_at_once_neither_bring_back_nor_lose_a_message(costs):
    # 400 in-flight messages deleted by 8 threads while 100 more are sent.
    assert costs["patched"]["sqs_delete_races"] == {"old_left": 0, "new_left": 100}
    # Stock moto brings deleted messages back when the threads interleave (why the patch exists);
    # whether they do in one run is the scheduler's choice, so it is not asserted.


def test_a_request_is_routed_without_listing_motos_package(costs):
    # 50 requests routed by the server's dispatcher.
    assert costs["stock"]["routing_directory_listings"] >= 50
    assert costs["patched"]["routing_directory_listings"] <= 1


def test_request_headers_are_read_without_the_email_parser_and_give_the_same_message(costs):
    # 12 header blocks, simple and odd (folded, no colon, no name, bare CR, unix-from, EOF, non-ASCII).
    assert costs["stock"]["header_parsing"]["views"] == costs["patched"]["header_parsing"]["views"]
    assert costs["stock"]["header_parsing"]["email_parser_runs"] >= 50
    assert costs["patched"]["header_parsing"]["email_parser_runs"] == 0


def test_a_handler_is_found_without_inspecting_the_whole_class(costs):
    # 50 DynamoDB requests.
    assert costs["stock"]["action_lookup_getmembers"] >= 50
    assert costs["patched"]["action_lookup_getmembers"] == 0


def test_a_message_past_its_retention_period_is_not_received(costs):
    # Of two queued messages, one sent longer ago than the queue's retention period.
    assert costs["stock"]["sqs_expired"] == costs["patched"]["sqs_expired"] == {"received": ["fresh"]}


def test_the_clock_gives_moto_s_values(costs):
    assert costs["patched"]["clock_same_values"] is True
    assert costs["patched"]["clock_rebound_in_sqs"] is True
    assert costs["stock"]["clock_rebound_in_sqs"] is False


def test_the_clock_follows_freezegun_as_stock_moto_s_does(costs):
    """moto's own test suite freezes time with freezegun; the faster clock follows it too."""
    assert costs["stock"]["clock_follows_freezegun"] is True
    assert costs["patched"]["clock_follows_freezegun"] is True


# --- DynamoDB atomicity (dynamodb.patch_atomic_requests) -------------------------------------------------

def test_concurrent_claims_and_counters_through_the_emulator_are_exact(local_env):
    ddb = aws.client(local_env, "dynamodb")
    ddb.create_table(TableName="claims", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])

    def work(owner: int) -> int:
        won = 0
        for key in range(20):
            ddb.update_item(TableName="claims", Key={"pk": {"S": "counter"}}, UpdateExpression="ADD n :one",
                            ExpressionAttributeValues={":one": {"N": "1"}})
            try:
                ddb.put_item(TableName="claims", Item={"pk": {"S": f"claim-{key}"}, "owner": {"N": str(owner)}},
                             ConditionExpression="attribute_not_exists(pk)")
                won += 1
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
        return won

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(work, range(8))) == 20  # each key claimed once
    assert ddb.get_item(TableName="claims", Key={"pk": {"S": "counter"}})["Item"]["n"] == {"N": "160"}


# --- SQS (sqs.patch_queue_scans, core.patch_clock) -----------------------------------------------------

def _counts(sqs, url: str) -> dict:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]


def _counted(visible: int, in_flight: int, delayed: int) -> dict:
    return {"ApproximateNumberOfMessages": str(visible), "ApproximateNumberOfMessagesNotVisible": str(in_flight),
            "ApproximateNumberOfMessagesDelayed": str(delayed)}


def test_sqs_receive_delete_and_counts_are_as_aws_gives_them(local_env):
    sqs = aws.client(local_env, "sqs")
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    for start in range(0, 25, 10):
        sent = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"}
                                                             for i in range(start, min(start + 10, 25))])
        assert len(sent["Successful"]) == min(10, 25 - start) and not sent.get("Failed")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert _counts(sqs, url) == _counted(25, 0, 1)

    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])["Messages"]
    assert len(received) == 10 and received[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert abs(int(received[0]["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000
    assert _counts(sqs, url) == _counted(15, 10, 1)

    for message in received[:4]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])  # again: accepted, as on AWS
    with pytest.raises(ClientError) as caught:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="no-such-handle")
    assert caught.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received[5]["ReceiptHandle"], VisibilityTimeout=0)
    assert _counts(sqs, url) == _counted(16, 5, 1)

    again = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        again += batch
    assert len(again) == 16 and "m5" in {m["Body"] for m in again}
    for message in again:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # A handle from an earlier receive still deletes its message.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[6]["ReceiptHandle"])
    assert _counts(sqs, url) == _counted(0, 4, 1)


def test_sqs_queue_attributes_are_stock_moto_s(local_env):
    def attributes(sqs) -> tuple:
        url = sqs.create_queue(QueueName="attrs", Attributes={"MessageRetentionPeriod": "3600"})["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "b"} for i in range(3)])
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
        everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        some = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "MessageRetentionPeriod", "Policy", "ApproximateNumberOfMessages", "MessageRetentionPeriod"])["Attributes"]
        try:
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])
            invalid = None
        except ClientError as error:
            invalid = error.response["Error"]["Code"]
        for volatile in ("CreatedTimestamp", "LastModifiedTimestamp"):
            everything.pop(volatile)
        return everything, some, invalid

    ours = attributes(aws.client(local_env, "sqs"))
    with mock_aws():  # stock moto in this process; the credentials are local_env's
        theirs = attributes(boto3.client("sqs", region_name="us-east-1"))
    assert ours == theirs
    everything, some, invalid = ours
    assert some == {"MessageRetentionPeriod": "3600", "ApproximateNumberOfMessages": "2"}
    assert everything["ApproximateNumberOfMessagesNotVisible"] == "1" and invalid == "InvalidAttributeName"


# --- DynamoDB (dynamodb.patch_expression_cache) ------------------------------------------------------

EXPRESSION = "SET #s = :s, updated = :u ADD done_count :one REMOVE stale"


def _update(ddb, key: str, status: str, updated: int, step: int) -> dict:
    return ddb.update_item(
        TableName="runs", Key={"pk": {"S": key}}, UpdateExpression=EXPRESSION, ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}, ":u": {"N": str(updated)}, ":one": {"N": str(step)}},
        ReturnValues="ALL_NEW")["Attributes"]


def _error(call) -> str:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return "no error"


def _expressions(ddb) -> tuple:
    ddb.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    results = [_update(ddb, "run", f"s{i}", i, 1) for i in range(5)]
    ddb.put_item(TableName="runs", Item={"pk": {"S": "run2"}, "stale": {"S": "x"}})
    results.append(_update(ddb, "run2", "other", 9, 5))
    errors = []
    for _ in range(2):  # a bad expression fails every time, not only the first
        errors.append(_error(lambda: ddb.update_item(TableName="runs", Key={"pk": {"S": "run"}}, UpdateExpression="SET = :s",
                                                     ExpressionAttributeValues={":s": {"S": "x"}})))
        errors.append(_error(lambda: ddb.update_item(
            TableName="runs", Key={"pk": {"S": "run"}}, UpdateExpression=EXPRESSION, ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "x"}, ":u": {"N": "1"}})))  # :one is missing
    for limit in (100, 1):  # the second condition fails: nothing of the transaction is applied
        errors.append(_error(lambda: ddb.transact_write_items(TransactItems=[{"Update": {
            "TableName": "runs", "Key": {"pk": {"S": "run"}}, "UpdateExpression": EXPRESSION,
            "ConditionExpression": "done_count < :max", "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": "t"}, ":u": {"N": "7"}, ":one": {"N": "1"},
                                          ":max": {"N": str(limit)}}}}])))
    for _ in range(2):  # each expression-only check fails every time
        for expression, names in (("SET a = :v SET b = :v", None), ("SET a = :v, a = :v", None), ("SET pk = :v", None),
                                  ("SET #a = :v, #b = :v", {"#a": "x", "#b": "x"})):
            errors.append(_error(lambda: ddb.update_item(
                TableName="runs", Key={"pk": {"S": "run2"}}, UpdateExpression=expression,
                ExpressionAttributeValues={":v": {"S": "v"}}, **({"ExpressionAttributeNames": names} if names else {}))))
    # The same expression with other names passes: the checks are kept per names, not per expression.
    errors.append(_error(lambda: ddb.update_item(
        TableName="runs", Key={"pk": {"S": "run2"}}, UpdateExpression="SET #a = :v, #b = :v",
        ExpressionAttributeNames={"#a": "x", "#b": "y"}, ExpressionAttributeValues={":v": {"S": "v"}})))
    errors.append(_error(lambda: ddb.update_item(
        TableName="runs", Key={"pk": {"S": "run"}}, UpdateExpression=EXPRESSION, ConditionExpression="#s = :old",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "u"}, ":u": {"N": "8"}, ":one": {"N": "1"}, ":old": {"S": "s0"}})))
    ddb.put_item(TableName="runs", Item={"pk": {"S": "shapes"}, "m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"N": "1"}, {"N": "2"}]},
                                         "ss": {"SS": ["a", "b"]}, "n": {"N": "5"}})
    for expression, values in (
            ("SET n = n + :two, m.k2 = :s, l[0] = :s, l2 = list_append(l, :list), fresh = if_not_exists(fresh, :s)",
             {":two": {"N": "2"}, ":s": {"S": "x"}, ":list": {"L": [{"N": "9"}]}}),
            ("REMOVE l[1], m.k DELETE ss :a ADD ss2 :b, n :two", {":a": {"SS": ["a"]}, ":b": {"SS": ["z"]}, ":two": {"N": "2"}}),
            ("SET n = n - :two, l = list_append(:list, l)", {":two": {"N": "2"}, ":list": {"L": [{"S": "first"}]}})):
        results.append(ddb.update_item(TableName="runs", Key={"pk": {"S": "shapes"}}, UpdateExpression=expression,
                                       ExpressionAttributeValues=values, ReturnValues="ALL_NEW")["Attributes"])
        errors.append(_error(lambda: ddb.update_item(TableName="runs", Key={"pk": {"S": "shapes"}},  # noqa: B023
                                                     UpdateExpression="SET n = n + :s", ExpressionAttributeValues={":s": {"S": "x"}})))
    final = ddb.get_item(TableName="runs", Key={"pk": {"S": "run"}})["Item"]
    return results, errors, final


def test_dynamodb_repeated_update_expressions_apply_fail_and_roll_back_as_on_aws(local_env):
    results, errors, final = _expressions(aws.client(local_env, "dynamodb"))
    assert results[4] == {"pk": {"S": "run"}, "status": {"S": "s4"}, "updated": {"N": "4"}, "done_count": {"N": "5"}}
    assert results[5] == {"pk": {"S": "run2"}, "status": {"S": "other"}, "updated": {"N": "9"}, "done_count": {"N": "5"}}
    assert errors == (["ValidationException"] * 4 + ["no error", "TransactionCanceledException"]
                      + ["ValidationException"] * 8 + ["no error", "ConditionalCheckFailedException"]
                      + ["ValidationException"] * 3)  # a number plus a string
    assert results[6]["n"] == {"N": "7"} and results[6]["l2"]["L"][-1] == {"N": "9"} and results[6]["fresh"] == {"S": "x"}
    assert results[7]["ss"] == {"SS": ["b"]} and results[7]["l"] == {"L": [{"S": "x"}]} and "k" not in results[7]["m"]["M"]
    assert results[8]["n"] == {"N": "7"} and results[8]["l"]["L"][0] == {"S": "first"}
    assert final == {"pk": {"S": "run"}, "status": {"S": "t"}, "updated": {"N": "7"}, "done_count": {"N": "6"}}


def test_dynamodb_update_expressions_answer_as_stock_moto(local_env):
    ours = _expressions(aws.client(local_env, "dynamodb"))
    with mock_aws():  # the credentials are local_env's
        theirs = _expressions(boto3.client("dynamodb", region_name="us-east-1"))
    assert ours == theirs


# --- routing and handler lookup (serving.patch_routing, core.patch_action_lookup) ----------------------

def test_requests_reach_their_services_again_and_again(local_env):
    for _ in range(3):  # routes kept per host answer the same way each time
        assert aws.client(local_env, "sts").get_caller_identity()["Account"] == "123456789012"
        assert "Buckets" in aws.client(local_env, "s3").list_buckets()
        assert aws.client(local_env, "dynamodb").list_tables()["TableNames"] == []
        assert aws.client(local_env, "sns").list_topics()["Topics"] == []
        assert "StackSummaries" in aws.client(local_env, "cloudformation").list_stacks()


def test_an_action_moto_lacks_fails_as_in_stock_moto(local_env, costs):
    assert costs["stock"]["unimplemented_action"] == costs["patched"]["unimplemented_action"] == \
        ["NotImplementedError", "The list_message_move_tasks action has not been implemented"]
    with pytest.raises(ClientError) as caught:  # the server answers moto's NotImplementedError with a 500
        aws.client(local_env, "sqs")._make_api_call("ListMessageMoveTasks", {"SourceArn": "arn:aws:sqs:us-east-1:123456789012:q"})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


# --- connections (serving.patch_keep_alive) ------------------------------------------------------------

def _signed_headers(endpoint: str, method: str, path: str, body: bytes) -> dict:
    request = AWSRequest(method=method, url=f"{endpoint}{path}", data=body)
    SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _connection(endpoint: str) -> http.client.HTTPConnection:
    host, port = endpoint.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=10)


def test_one_connection_carries_many_requests_with_and_without_bodies(local_env):
    endpoint = local_env.endpoint_url
    connection = _connection(endpoint)
    steps = [("PUT", "/kept", b"", 200), ("PUT", "/kept/k1", b"hello world", 200),
             ("PUT", "/kept/k2", b"x" * 70_000, 200), ("GET", "/kept/k1", b"", 200), ("HEAD", "/kept/k2", b"", 200),
             ("GET", "/kept/missing", b"", 404), ("GET", "/kept?list-type=2", b"", 200), ("DELETE", "/kept/k1", b"", 204)]
    sockets, bodies = set(), {}
    for method, path, body, status in steps:
        connection.request(method, path, body=body, headers=_signed_headers(endpoint, method, path, body))
        sockets.add(id(connection.sock))
        response = connection.getresponse()
        bodies[(method, path)] = response.read()
        assert (response.status, response.getheader("Connection")) == (status, None), (method, path)
    connection.close()
    assert len(sockets) == 1  # the eight requests went over one connection
    assert bodies[("GET", "/kept/k1")] == b"hello world" and bodies[("HEAD", "/kept/k2")] == b""
    assert b"<Code>NoSuchKey</Code>" in bodies[("GET", "/kept/missing")]
    assert b"<Key>k1</Key>" in bodies[("GET", "/kept?list-type=2")] and b"<KeyCount>2</KeyCount>" in bodies[("GET", "/kept?list-type=2")]
    assert aws.client(local_env, "s3").get_object(Bucket="kept", Key="k2")["Body"].read() == b"x" * 70_000


def test_a_client_asking_to_close_or_sending_a_chunked_body_is_answered_and_closed(local_env):
    endpoint = local_env.endpoint_url
    aws.client(local_env, "s3").create_bucket(Bucket="closing")
    connection = _connection(endpoint)
    connection.request("GET", "/closing?list-type=2", headers={**_signed_headers(endpoint, "GET", "/closing?list-type=2", b""),
                                                                 "Connection": "close"})
    response = connection.getresponse()
    assert (response.status, response.getheader("Connection")) == (200, "close") and b"<KeyCount>0" in response.read()

    connection = _connection(endpoint)
    headers = {k: v for k, v in _signed_headers(endpoint, "PUT", "/closing/chunked", b"chunked body").items()
               if k.lower() != "content-length"}
    connection.request("PUT", "/closing/chunked", body=iter([b"chunked", b" body"]), encode_chunked=True,
                       headers={**headers, "Transfer-Encoding": "chunked"})
    response = connection.getresponse()
    response.read()
    assert (response.status, response.getheader("Connection")) == (200, "close")
    assert aws.client(local_env, "s3").get_object(Bucket="closing", Key="chunked")["Body"].read() == b"chunked body"


def test_boto3_keeps_its_pooled_connections_under_a_burst(local_env):
    s3 = aws.client(local_env, "s3")
    s3.create_bucket(Bucket="burst")

    def put_then_get(i: int) -> int:
        s3.put_object(Bucket="burst", Key=f"k/{i:03d}", Body=bytes(i * 100))
        return s3.get_object(Bucket="burst", Key=f"k/{i:03d}")["ContentLength"]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(put_then_get, range(120))) == [i * 100 for i in range(120)]
    assert s3.list_objects_v2(Bucket="burst")["KeyCount"] == 120


# --- DynamoDB (dynamodb.patch_update_item_work) ----------------------------------------------------

CLAIM = {"UpdateExpression": "SET #state = if_not_exists(#state, :storing), #owner = if_not_exists(#owner, :owner), "
                             "last_referenced = :now ADD refs :one",
         "ConditionExpression": "attribute_not_exists(#pk) OR #state = :stored",
         "ExpressionAttributeNames": {"#pk": "content_hash", "#state": "state", "#owner": "owner"}}


def _claim(ddb, table: str, key: str, owner: str, now: str, **extra) -> dict:
    return ddb.update_item(TableName=table, Key={"content_hash": {"S": key}}, **CLAIM, **extra,
                           ExpressionAttributeValues={":storing": {"S": "STORING"}, ":stored": {"S": "STORED"},
                                                      ":owner": {"S": owner}, ":now": {"S": now}, ":one": {"N": "1"}})


def _new_item_updates(client) -> tuple:
    """Updates of items that do not exist yet and of items that do, with conditions, return values,
    an expression naming the key attribute, and transactions (a table with a stream: emulator_costs.py)."""
    ddb = client("dynamodb")
    key_schema = {"KeySchema": [{"AttributeName": "content_hash", "KeyType": "HASH"}],
                  "AttributeDefinitions": [{"AttributeName": "content_hash", "AttributeType": "S"}],
                  "BillingMode": "PAY_PER_REQUEST"}
    ddb.create_table(TableName="content", **key_schema)
    ddb.create_table(TableName="other", **key_schema)
    answers, errors = [], []
    for table in ("content", "other"):
        answers.append(_claim(ddb, table, "a", "job-1", "t1", ReturnValues="ALL_OLD").get("Attributes"))   # claimed
        errors.append(_error(lambda: _claim(ddb, table, "a", "job-2", "t2", ReturnValuesOnConditionCheckFailure="ALL_OLD")))  # noqa: B023
        ddb.update_item(TableName=table, Key={"content_hash": {"S": "a"}}, UpdateExpression="SET #state = :stored, tags = :tags",
                        ExpressionAttributeNames={"#state": "state"},
                        ExpressionAttributeValues={":stored": {"S": "STORED"}, ":tags": {"SS": ["x"]}})
        answers.append(_claim(ddb, table, "a", "job-2", "t3", ReturnValues="ALL_OLD")["Attributes"])     # touched
        answers.append(ddb.update_item(TableName=table, Key={"content_hash": {"S": "a"}}, UpdateExpression="ADD tags :more",
                                       ExpressionAttributeValues={":more": {"SS": ["y"]}}, ReturnValues="UPDATED_OLD")["Attributes"])
        answers.append(_claim(ddb, table, "b", "job-3", "t4", ReturnValues="ALL_NEW")["Attributes"])     # claimed, new values
    # The key attribute named on a new item (moto refuses it as an update of the key).
    errors.append(_error(lambda: ddb.update_item(TableName="content", Key={"content_hash": {"S": "c"}},
                                                 UpdateExpression="SET copy_of_key = if_not_exists(content_hash, :v)",
                                                 ExpressionAttributeValues={":v": {"S": "none"}})))
    errors.append(_error(lambda: ddb.update_item(TableName="content", Key={"content_hash": {"S": "d"}},   # a missing operand
                                                 UpdateExpression="SET n = n + :one", ExpressionAttributeValues={":one": {"N": "1"}})))
    errors.append(_error(lambda: ddb.update_item(TableName="content", Key={"content_hash": {"S": "d"}},   # a missing value
                                                 UpdateExpression="SET n = :one", ExpressionAttributeValues={":two": {"N": "2"}})))
    errors.append(_error(lambda: ddb.transact_write_items(TransactItems=[  # the second claim's condition fails: nothing applied
        {"Update": {"TableName": "content", "Key": {"content_hash": {"S": key}}, **CLAIM,
                    "ExpressionAttributeValues": {":storing": {"S": "STORING"}, ":stored": {"S": "STORED"}, ":owner": {"S": "tx"},
                                                  ":now": {"S": "t5"}, ":one": {"N": "1"}}}} for key in ("e", "b")])))
    ddb.transact_write_items(TransactItems=[
        {"Update": {"TableName": "content", "Key": {"content_hash": {"S": key}}, **CLAIM,
                    "ExpressionAttributeValues": {":storing": {"S": "STORING"}, ":stored": {"S": "STORED"}, ":owner": {"S": "tx"},
                                                  ":now": {"S": "t6"}, ":one": {"N": "1"}}}} for key in ("e", "a")])
    items = sorted(ddb.scan(TableName="content")["Items"], key=lambda item: item["content_hash"]["S"])
    return answers, errors, items


def test_dynamodb_claims_of_new_and_stored_items_answer_as_on_aws(local_env):
    answers, errors, items = _new_item_updates(lambda service: aws.client(local_env, service))
    assert answers[0] is None and answers[4] is None                         # a claim of a new item had nothing before
    assert answers[1]["owner"] == {"S": "job-1"} and answers[1]["state"] == {"S": "STORED"}
    assert answers[2] == {"tags": {"SS": ["x"]}}                              # the set as it was before the ADD
    assert answers[3]["state"] == {"S": "STORING"} and answers[3]["refs"] == {"N": "1"}
    assert errors == ["ConditionalCheckFailedException"] * 2 + ["ValidationException"] * 3 + ["TransactionCanceledException"]
    by_key = {item["content_hash"]["S"]: item for item in items}
    assert sorted(by_key) == ["a", "b", "e"]                                  # the cancelled transaction made no "e" ...
    assert by_key["a"]["refs"] == {"N": "3"} and by_key["a"]["owner"] == {"S": "job-1"}   # ... the second one touched "a"


def test_dynamodb_claims_answer_as_stock_moto(local_env):
    ours = _new_item_updates(lambda service: aws.client(local_env, service))
    with mock_aws():  # the credentials are local_env's
        theirs = _new_item_updates(lambda service: boto3.client(service, region_name="us-east-1"))
    assert ours == theirs


def test_an_update_validates_a_new_item_once_and_copies_no_item_for_a_missing_stream(costs):
    stock, patched = costs["stock"]["dynamodb_update_work"], costs["patched"]["dynamodb_update_work"]
    # 20 updates of new items, 20 of the same items again, 5 transactions updating two of them each.
    assert stock["validations"] == 2 * 20 + 20 + 5 * 2
    assert patched["validations"] == 20 + 20 + 5 * 2
    assert stock["condition_parses"] == 2 * 40 + 3 * 10        # handler and backend; handler, transaction and backend
    assert patched["condition_parses"] == 40 + 2 * 10
    assert patched["item_copies"] == stock["item_copies"] - 20 - 10
    assert patched["final"] == stock["final"]
    # A table with a stream: every update's old and new images, as stock moto records them.
    assert patched["stream"] == stock["stream"] and [event for event, _, _ in stock["stream"]][-2:] == ["MODIFY"] * 2
    assert stock["stream"][-1][1]["tags"] == {"SS": ["x"]} and stock["stream"][-1][2]["tags"] == {"SS": ["x", "y"]}
