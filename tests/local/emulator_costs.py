"""Counts the per-request work moto does, with its speed patches (`patched`) or without (`stock`),
in a process of its own so that the patches reach no other test's moto. Prints one JSON object;
tests/local/test_emulator_speed.py reads it.

    python tests/local/emulator_costs.py stock|patched

moto runs in this process (`mock_aws`), the same backends and response classes the emulator serves;
the dispatcher that routes the server's requests is called directly.
"""
from __future__ import annotations

import datetime
import hashlib
import inspect
import json
import os
import random
import re
import sys
import contextlib
from contextlib import contextmanager

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
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


def dynamodb_parses() -> dict:
    """Parses of an UpdateExpression, and passes of the validators that check only the expression,
    for 40 UpdateItems and 10 TransactWriteItems with the same expression."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import ExpressionTokenizer

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    update = {"TableName": "runs", "UpdateExpression": "SET #s = :s ADD done_count :one",
              "ExpressionAttributeNames": {"#s": "status"},
              "ExpressionAttributeValues": {":s": {"S": "DONE"}, ":one": {"N": "1"}}}
    parses: list = []
    checks: list = []
    maps: list = []
    traversers = [cls for cls in vars(validators).values()
                  if isinstance(cls, type) and issubclass(cls, validators.DepthFirstTraverser) and "_processing_map" in vars(cls)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(counting(ExpressionTokenizer, "make_list", parses))
        for cls in (validators.ActionCountValidator, validators.OverlappingPathsValidator, validators.UpdateHashRangeKeyValidator):
            stack.enter_context(counting(cls, "traverse", checks))
        for cls in traversers:
            stack.enter_context(counting(cls, "_processing_map", maps))
        for i in range(40):
            ddb.update_item(Key={"pk": {"S": f"user-{i % 4}"}}, **update)
        for i in range(10):
            ddb.transact_write_items(TransactItems=[{"Update": {"Key": {"pk": {"S": f"user-{i}"}}, **update}}])
    assert ddb.get_item(TableName="runs", Key={"pk": {"S": "user-0"}})["Item"]["done_count"] == {"N": "11"}
    return {"parses": len(parses), "expression_checks": len(checks), "processing_maps_built": len(maps)}


def dynamodb_update_work() -> dict:
    """Validations of an update expression, parses of a condition expression and deep copies of an
    item for 20 conditional UpdateItems of new items, 20 of the same items again, and 5
    TransactWriteItems of two of those items each, on a table without a stream."""
    from moto.dynamodb import comparisons
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.parsing import validators

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName="content", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    update = {"UpdateExpression": "SET #owner = if_not_exists(#owner, :owner), seen = :now ADD refs :one",
              "ConditionExpression": "attribute_not_exists(#pk) OR refs < :max",
              "ExpressionAttributeNames": {"#pk": "pk", "#owner": "owner"}}

    def values(i: int) -> dict:
        return {":owner": {"S": f"job-{i}"}, ":now": {"S": f"t{i}"}, ":one": {"N": "1"}, ":max": {"N": "10"}}

    validations: list = []
    parses: list = []
    copies: list = []

    with contextlib.ExitStack() as stack:
        stack.enter_context(counting(validators.ExpressionAttributeValueProcessor, "traverse", validations))
        stack.enter_context(counting(comparisons.ConditionExpressionParser, "_lex_condition_expression", parses))
        stack.enter_context(counting(Item, "__deepcopy__", copies))
        for i in range(40):
            ddb.update_item(TableName="content", Key={"pk": {"S": f"c{i % 20}"}}, ExpressionAttributeValues=values(i), **update)
        for i in range(5):
            ddb.transact_write_items(TransactItems=[{"Update": {"TableName": "content", "Key": {"pk": {"S": f"c{2 * i + j}"}},
                                                                "ExpressionAttributeValues": values(100 + i), **update}}
                                                    for j in range(2)])
    final = sorted((item["pk"]["S"], item["refs"]["N"], item["owner"]["S"], item["seen"]["S"])
                   for item in ddb.scan(TableName="content")["Items"])
    return {"validations": len(validations), "condition_parses": len(parses), "item_copies": len(copies), "final": final,
            "stream": dynamodb_stream_images(ddb)}


def dynamodb_stream_images(ddb) -> list:
    """The stream records of a claim, a touch and an ADD to a set (the item's copy before each
    update is what the old image is made from)."""
    ddb.create_table(TableName="streamed", BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    key = {"pk": {"S": "a"}}
    for expression, values in (("SET #owner = if_not_exists(#owner, :v), tags = :tags", {":v": {"S": "job-1"}, ":tags": {"SS": ["x"]}}),
                               ("SET #owner = if_not_exists(#owner, :v)", {":v": {"S": "job-2"}}),
                               ("ADD tags :more SET #owner = #owner", {":more": {"SS": ["y"]}})):
        ddb.update_item(TableName="streamed", Key=key, UpdateExpression=expression, ExpressionAttributeValues=values,
                        ConditionExpression="attribute_not_exists(#pk) OR attribute_exists(#owner)",
                        ExpressionAttributeNames={"#pk": "pk", "#owner": "owner"})
    # moto 5.2.5 has no DescribeStream: the records as its table's stream shard holds them.
    from moto.dynamodb.models import dynamodb_backends

    shard = dynamodb_backends["123456789012"]["us-east-1"].tables["streamed"].stream_shard
    return [(r.record["eventName"], r.record["dynamodb"].get("OldImage"), r.record["dynamodb"].get("NewImage"))
            for r in shard.items]


def random_attribute(rng: random.Random, depth: int = 0) -> dict:
    kinds = ["S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL"] + (["M", "L"] if depth < 3 else [])
    kind = rng.choice(kinds)
    text = lambda: "".join(rng.choice("ab é\"\\/\u2603") for _ in range(rng.randint(1, 6)))  # noqa: E731
    number = lambda: str(rng.choice([0, -1, 7, 123456789012, 3.25, -0.5]))  # noqa: E731
    binary = lambda: bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))  # noqa: E731
    if kind == "S":
        return {"S": text()}
    if kind == "N":
        return {"N": number()}
    if kind == "B":
        return {"B": binary()}
    if kind in ("SS", "NS", "BS"):
        make = {"SS": text, "NS": number, "BS": binary}[kind]
        values = []
        while len(values) < rng.randint(1, 4):
            value = make()
            if value not in values:
                values.append(value)
        return {kind: values}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "M":
        return {"M": {text(): random_attribute(rng, depth + 1) for _ in range(rng.randint(0, 4))}}
    return {"L": [random_attribute(rng, depth + 1) for _ in range(rng.randint(0, 4))]}


def dynamodb_serialized_attribute_values() -> int:
    """AttributeValues that go through moto's generic member-by-member structure serializer for
    10 GetItems of a 20-attribute item."""
    from moto.core import serialize

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    ddb.put_item(TableName="runs", Item={"pk": {"S": "RUN"}, **{f"count_{i}": {"N": str(i)} for i in range(19)}})
    structures: list = []
    original = serialize.ResponseSerializer._serialize_type_structure

    def counted(self, serialized, value, shape, key):
        if shape.name == "AttributeValue":
            structures.append(1)
        return original(self, serialized, value, shape, key)

    serialize.ResponseSerializer._serialize_type_structure = counted
    try:
        for _ in range(10):
            assert len(ddb.get_item(TableName="runs", Key={"pk": {"S": "RUN"}})["Item"]) == 20
    finally:
        serialize.ResponseSerializer._serialize_type_structure = original
    return len(structures)


def dynamodb_bodies() -> str:
    """The raw JSON of every read and write answer for 60 random items (sets, maps, lists, binary,
    unicode), hashed: it must not depend on the serializer."""
    rng = random.Random(11)
    ddb = boto3.client("dynamodb")
    bodies = []
    ddb.meta.events.register("after-call.dynamodb", lambda http_response, **_: bodies.append(http_response.content))
    ddb.create_table(TableName="items", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                     AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")])
    for i in range(60):
        item = {f"a{j}": random_attribute(rng) for j in range(rng.randint(1, 12))}
        key = {"pk": {"S": f"p{i % 3}"}, "sk": {"S": f"s{i:02d}"}}
        ddb.put_item(TableName="items", Item={**key, **item}, ReturnConsumedCapacity="TOTAL")
        ddb.get_item(TableName="items", Key=key)
        ddb.update_item(TableName="items", Key=key, UpdateExpression="SET extra = :v",
                        ExpressionAttributeValues={":v": random_attribute(rng)}, ReturnValues="ALL_NEW")
        ddb.put_item(TableName="items", Item={**key, **item}, ReturnValues="ALL_OLD")
    ddb.query(TableName="items", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}})
    ddb.scan(TableName="items")
    ddb.batch_get_item(RequestItems={"items": {"Keys": [{"pk": {"S": "p0"}, "sk": {"S": "s00"}},
                                                         {"pk": {"S": "p1"}, "sk": {"S": "s01"}}]}})
    ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "items", "Key": {"pk": {"S": "p2"}, "sk": {"S": "s02"}}}}])
    volatile = re.compile(rb'"(CreationDateTime|TableArn|TableId|LastUpdateToPayPerRequestDateTime)": [^,}]*')
    return hashlib.sha256(b"\n".join(volatile.sub(b"", body) for body in bodies)).hexdigest() + f" {len(bodies)}"


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


def race(threads: list) -> None:
    """Run the threads to the end with the interpreter switching between them as often as it can."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


def dynamodb_races() -> dict:
    """8 threads adding 1 to one counter 100 times each, and 8 threads claiming the same 30 keys
    (PutItem unless it exists), with the interpreter switching threads as often as it can."""
    import threading

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    wins: list = []

    def add() -> None:
        for _ in range(100):
            ddb.update_item(TableName="t", Key={"pk": {"S": "counter"}}, UpdateExpression="ADD n :one",
                            ExpressionAttributeValues={":one": {"N": "1"}})

    def claim(owner: int) -> None:
        for key in range(30):
            try:
                ddb.put_item(TableName="t", Item={"pk": {"S": f"claim-{key}"}, "owner": {"N": str(owner)}},
                             ConditionExpression="attribute_not_exists(pk)")
                wins.append(key)
            except ClientError as error:  # (botocore builds its exception classes lazily, racily)
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"

    threads = [threading.Thread(target=add) for _ in range(8)] + [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    race(threads)
    count = int(ddb.get_item(TableName="t", Key={"pk": {"S": "counter"}})["Item"]["n"]["N"])
    return {"count": count, "claims": len(wins)}


def sqs_delete_races() -> dict:
    """400 messages received, then deleted by 8 threads at once while a ninth sends 100 more, the
    interpreter switching threads as often as it can: what is left in the queue, by kind."""
    import threading

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="races", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for start in range(0, 400, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"old-{i}"}
                                                      for i in range(start, start + 10)])
    handles: list = []
    while len(handles) < 400:
        handles += [m["ReceiptHandle"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]

    def delete(share: list) -> None:
        for handle in share:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)

    def send() -> None:
        for i in range(100):
            sqs.send_message(QueueUrl=url, MessageBody=f"new-{i}")

    threads = [threading.Thread(target=delete, args=(handles[i::8],)) for i in range(8)] + [threading.Thread(target=send)]
    race(threads)
    from moto.sqs.models import sqs_backends
    queue = sqs_backends["123456789012"]["us-east-1"].queues["races"]
    bodies = [message.body for message in queue._messages]
    return {"old_left": sum(b.startswith("old-") for b in bodies), "new_left": sum(b.startswith("new-") for b in bodies)}


HEADER_BLOCKS = [
    b"Host: 127.0.0.1:5055\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\nContent-Length: 5\r\n\r\n",
    b"Host:   spaced  \r\nEmpty:\r\n\r\n", b"Host: a\r\n folded\r\n\r\n", b"Bad line\r\nHost: a\r\n\r\n",
    b": no name\r\nHost: a\r\n\r\n", b"Host: a\rb\r\n\r\n", b"From x\r\n\r\n", b"Host: a\n\n", b"Host: a\r\n",
    b"X-Amz-Meta-Note: caf\xc3\xa9\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n", b"\r\n", b"Sp ace: x\r\n\r\n",
]


def header_parsing() -> dict:
    """What http.client.parse_headers makes of simple and odd header blocks (every field of the
    message the server reads), and how many simple blocks go through the email parser."""
    import email.feedparser
    import http.client
    import io

    def view(message) -> list:
        return [message.items(), message.get_payload(), [type(d).__name__ for d in message.defects],
                message.get_unixfrom(), type(message).__name__]

    views = [view(http.client.parse_headers(io.BytesIO(block))) for block in HEADER_BLOCKS]
    feeds: list = []
    with counting(email.feedparser.FeedParser, "feed", feeds):
        for _ in range(50):
            assert http.client.parse_headers(io.BytesIO(HEADER_BLOCKS[0]))["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    return {"views": hashlib.sha256(json.dumps(views).encode()).hexdigest(), "email_parser_runs": len(feeds)}


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
    return {"clock_same_values": bool(same), "clock_rebound_in_sqs": models.unix_time is not stock["unix_time"],
            "clock_follows_freezegun": clock_follows_freezegun()}


def clock_follows_freezegun() -> bool:
    """moto's own tests freeze its clock with freezegun: the clock SQS reads (rebound or not) and
    moto.core.utils' must both give the frozen moment."""
    import moto.core.utils as core_utils
    from freezegun import freeze_time
    from moto.sqs import models

    frozen = datetime.datetime(2019, 5, 1, 12, 0, 0)
    with freeze_time(frozen):
        return (core_utils.utcnow() == frozen and models.unix_time() == (frozen - datetime.datetime(1970, 1, 1)).total_seconds()
                and core_utils.utcfromtimestamp(0) == datetime.datetime(1970, 1, 1))


def main(variant: str) -> dict:
    import moto.core.utils as core_utils
    import moto.sqs.models  # noqa: F401 - imported before the patches, as in the emulator

    stock_clock = {name: getattr(core_utils, name) for name in ("utcnow", "utcfromtimestamp", "unix_time", "unix_time_millis")}
    if variant == "patched":
        from backup_cfn.local.patches import apply_speed_patches, dynamodb

        dynamodb.patch_atomic_requests()
        apply_speed_patches()
    counts = {}
    for name, count in (("sqs_clock_reads", sqs_clock_reads), ("sqs_expired", sqs_expired),
                        ("s3_keys_visited", s3_keys_visited), ("dynamodb_parses", dynamodb_parses), ("dynamodb_update_work", dynamodb_update_work),
                        ("action_lookup_getmembers", action_lookup_getmembers),
                        ("unimplemented_action", unimplemented_action), ("dynamodb_bodies", dynamodb_bodies),
                        ("dynamodb_serialized_attribute_values", dynamodb_serialized_attribute_values),
                        ("dynamodb_races", dynamodb_races), ("sqs_delete_races", sqs_delete_races)):
        with mock_aws():
            counts[name] = count()
    counts["routing_directory_listings"] = routing_directory_listings()
    counts["header_parsing"] = header_parsing()
    counts.update(clock(stock_clock))
    return counts


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
