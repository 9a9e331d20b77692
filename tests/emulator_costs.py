"""Counts the per-request work moto does, with its speed patches (`patched`) or without (`stock`),
in a process of its own so that the patches reach no other test's moto. Prints one JSON object;
tests/test_emulator_speed.py reads it.

    python tests/emulator_costs.py stock|patched

moto runs in this process (`mock_aws`), the same backends and response classes the emulator serves;
the dispatcher that routes the server's requests is called directly.
"""
from __future__ import annotations

import datetime
import inspect
import json
import os
import sys
from contextlib import contextmanager

import boto3
from botocore.config import Config
from moto import mock_aws

os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")


@contextmanager
def counting(owner, name: str, tally: list):
    """Count the calls to `owner.name` while inside."""
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        tally.append(1)
        return original(*args, **kwargs)

    setattr(owner, name, counted)
    try:
        yield
    finally:
        setattr(owner, name, original)


def sqs_clock_reads() -> int:
    from moto.sqs import models

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    for start in range(0, 300, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "job"} for i in range(start, start + 10)])
    reads: list = []
    with counting(models, "unix_time_millis", reads), counting(models, "unix_time", reads):
        assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 10
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "job"} for i in range(10)])
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"] == "300"
    return len(reads)


def sqs_expired() -> dict:
    from moto.sqs.models import sqs_backends

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="fresh")
    sqs.send_message(QueueUrl=url, MessageBody="old")
    queue = sqs_backends["123456789012"]["us-east-1"].queues["retained"]
    next(m for m in queue._messages if m.body == "old").sent_timestamp -= 61_000  # sent 61 s earlier
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return {"received": [m["Body"] for m in received]}


def s3_keys_visited() -> int:
    from moto.s3 import utils

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="source")
    for user in range(200):
        for i in range(10):
            s3.put_object(Bucket="source", Key=f"client-{user:04d}/r{i}.pdf", Body=b"x")
    visits: list = []
    # The key store moto's buckets use (the patch's subclass when patched): every key a listing
    # reads through moto's accessors, and every copy of the whole store.
    store = type(_bucket_keys("source"))
    with counting(store, "__getitem__", visits), counting(utils._VersionedKeyStore, "_self_iterable", visits):
        page = s3.list_objects_v2(Bucket="source", Prefix="client-0042/")
    assert page["KeyCount"] == 10
    return len(visits)


def _bucket_keys(bucket: str):
    from moto.s3.models import s3_backends

    return s3_backends["123456789012"]["aws"].buckets[bucket].keys


def dynamodb_parses() -> int:
    from moto.dynamodb.parsing.expressions import ExpressionTokenizer

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    update = {"TableName": "runs", "UpdateExpression": "SET #s = :s ADD done_count :one",
              "ExpressionAttributeNames": {"#s": "status"},
              "ExpressionAttributeValues": {":s": {"S": "DONE"}, ":one": {"N": "1"}}}
    parses: list = []
    with counting(ExpressionTokenizer, "make_list", parses):
        for i in range(40):
            ddb.update_item(Key={"pk": {"S": f"user-{i % 4}"}}, **update)
        for i in range(10):
            ddb.transact_write_items(TransactItems=[{"Update": {"Key": {"pk": {"S": f"user-{i}"}}, **update}}])
    assert ddb.get_item(TableName="runs", Key={"pk": {"S": "user-0"}})["Item"]["done_count"] == {"N": "11"}
    return len(parses)


def routing_directory_listings() -> int:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    dispatcher = DomainDispatcherApplication(create_backend_app)
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_HOST": "127.0.0.1:5000",
               "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.ListTables",
               "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                                     "SignedHeaders=host, Signature=0"}
    listings: list = []
    with counting(os, "listdir", listings):
        apps = {id(dispatcher.get_application(dict(environ))) for _ in range(50)}
    assert len(apps) == 1
    return len(listings)


def action_lookup_getmembers() -> int:
    ddb = boto3.client("dynamodb")
    calls: list = []
    with counting(inspect, "getmembers", calls):
        for _ in range(50):
            assert ddb.list_tables()["TableNames"] == []
    return len(calls)


def unimplemented_action() -> list[str]:
    """What moto does with an action its response class lacks."""
    sqs = boto3.client("sqs", config=Config(retries={"max_attempts": 1}))
    assert sqs.list_queues().get("QueueUrls", []) == []
    try:
        sqs._make_api_call("ListMessageMoveTasks", {"SourceArn": "arn:aws:sqs:us-east-1:123456789012:q"})
    except Exception as error:  # noqa: BLE001 - what is raised is the answer
        return [type(error).__name__, str(error)]
    return ["answered", ""]


def clock(stock: dict) -> dict:
    """moto's clock functions (patched or not) against the stock ones, on the same inputs."""
    import moto.core.utils as core_utils
    from moto.sqs import models

    moments = [datetime.datetime(1970, 1, 1), datetime.datetime(2026, 11, 29, 2, 0, 0, 123456),
               datetime.datetime(1999, 12, 31, 23, 59, 59, 999999), datetime.datetime(2038, 1, 19, 3, 14, 8, 1)]
    same = all(core_utils.unix_time(m) == stock["unix_time"](m) and
               core_utils.unix_time_millis(m) == stock["unix_time_millis"](m) for m in moments)
    same &= all(core_utils.utcfromtimestamp(t) == stock["utcfromtimestamp"](t) for t in (0, 1.5, 1764381600, 1764381600.123456))
    now = core_utils.utcnow()
    same &= now.tzinfo is None and abs((now - stock["utcnow"]()).total_seconds()) < 5
    same &= abs(core_utils.unix_time() - stock["unix_time"]()) < 5
    return {"clock_same_values": bool(same), "clock_rebound_in_sqs": models.unix_time is not stock["unix_time"]}


def main(variant: str) -> dict:
    import moto.core.utils as core_utils
    import moto.sqs.models  # noqa: F401 - imported before the patches, as in the emulator

    stock_clock = {name: getattr(core_utils, name) for name in ("utcnow", "utcfromtimestamp", "unix_time", "unix_time_millis")}
    if variant == "patched":
        from backup_cfn.local.patches import core, dynamodb, s3, serving, sqs

        core.patch_clock()
        core.patch_action_lookup()
        serving.patch_routing()
        serving.patch_keep_alive()
        sqs.patch_queue_scans()
        s3.patch_list_index()
        dynamodb.patch_expression_cache()
    counts = {}
    for name, count in (("sqs_clock_reads", sqs_clock_reads), ("sqs_expired", sqs_expired),
                        ("s3_keys_visited", s3_keys_visited), ("dynamodb_parses", dynamodb_parses),
                        ("action_lookup_getmembers", action_lookup_getmembers),
                        ("unimplemented_action", unimplemented_action)):
        with mock_aws():
            counts[name] = count()
    counts["routing_directory_listings"] = routing_directory_listings()
    counts.update(clock(stock_clock))
    return counts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
