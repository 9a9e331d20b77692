"""The emulator fix the engine needs (backup_cfn.engine_emulator): TransactWriteItems snapshots
only the items it names, and still rolls back exactly on a failed condition."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from backup_cfn.local.patches.dynamodb import patch_transactions


def add(key: str, condition: str | None = None) -> dict:
    update = {"TableName": "runs", "Key": {"run_id": {"S": "r"}, "item": {"S": key}},
              "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}
    if condition:
        update["ConditionExpression"] = condition
        update["ExpressionAttributeValues"][":zero"] = {"N": "0"}
    return {"Update": update}


def count(dynamodb, key: str) -> str:
    return dynamodb.get_item(TableName="runs", Key={"run_id": {"S": "r"}, "item": {"S": key}})["Item"]["n"]["N"]


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch_transactions()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="runs", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("run_id", "item")],
                            KeySchema=[{"AttributeName": "run_id", "KeyType": "HASH"},
                                       {"AttributeName": "item", "KeyType": "RANGE"}])
        for key in ("RUN", "USER#a", "USER#b"):
            client.put_item(TableName="runs", Item={"run_id": {"S": "r"}, "item": {"S": key}, "n": {"N": "0"}})
        yield client


def test_a_committed_transaction_applies_every_item(dynamodb):
    dynamodb.transact_write_items(TransactItems=[add("USER#a"), add("RUN")])
    assert (count(dynamodb, "USER#a"), count(dynamodb, "RUN"), count(dynamodb, "USER#b")) == ("1", "1", "0")


def test_a_cancelled_transaction_rolls_back_the_items_it_changed(dynamodb):
    dynamodb.transact_write_items(TransactItems=[add("USER#b")])
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=[add("RUN"), add("USER#b", condition="n = :zero")])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert (count(dynamodb, "RUN"), count(dynamodb, "USER#b")) == ("0", "1")
    # The table still works after a rollback.
    dynamodb.transact_write_items(TransactItems=[add("RUN")])
    assert count(dynamodb, "RUN") == "1"
