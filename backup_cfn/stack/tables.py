"""DynamoDB: the runs table (per run and per user job) and the content index (hash -> stored object)."""
from __future__ import annotations

from troposphere import GetAtt, If, Template, dynamodb

from backup_cfn.config import Environment
from backup_cfn.contract import (
    CONTENT_PARTITION_KEY,
    RUNS_BY_STATUS_INDEX,
    RUNS_BY_USER_INDEX,
    RUNS_PARTITION_KEY,
    RUNS_SORT_KEY,
    RUNS_TTL_ATTRIBUTE,
)
from backup_cfn.stack.resource_options import retain, tags


def _common(env: Environment, key, protected: str | None) -> dict:
    """`protected`: the condition under which deletion protection is on (production), or None (off)."""
    return dict(
        BillingMode="PAY_PER_REQUEST",
        SSESpecification=dynamodb.SSESpecification(SSEEnabled=True, SSEType="KMS",
                                                   KMSMasterKeyId=GetAtt(key, "Arn")),
        PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(
            PointInTimeRecoveryEnabled=True),
        DeletionProtectionEnabled=If(protected, True, False) if protected else False,
        Tags=tags(env),
    )


def _string(name: str) -> dynamodb.AttributeDefinition:
    return dynamodb.AttributeDefinition(AttributeName=name, AttributeType="S")


def _index(name: str, partition: str, sort: str) -> dynamodb.GlobalSecondaryIndex:
    return dynamodb.GlobalSecondaryIndex(
        IndexName=name,
        KeySchema=[dynamodb.KeySchema(AttributeName=partition, KeyType="HASH"),
                   dynamodb.KeySchema(AttributeName=sort, KeyType="RANGE")],
        Projection=dynamodb.Projection(ProjectionType="ALL"),
    )


def add_runs_table(t: Template, env: Environment, key, protected: str | None = None) -> dynamodb.Table:
    return t.add_resource(retain(dynamodb.Table(
        "RunsTable",
        AttributeDefinitions=[_string(RUNS_PARTITION_KEY), _string(RUNS_SORT_KEY), _string("user"), _string("status")],
        KeySchema=[dynamodb.KeySchema(AttributeName=RUNS_PARTITION_KEY, KeyType="HASH"),
                   dynamodb.KeySchema(AttributeName=RUNS_SORT_KEY, KeyType="RANGE")],
        GlobalSecondaryIndexes=[_index(RUNS_BY_USER_INDEX, "user", RUNS_PARTITION_KEY),
                                _index(RUNS_BY_STATUS_INDEX, "status", RUNS_PARTITION_KEY)],
        TimeToLiveSpecification=dynamodb.TimeToLiveSpecification(AttributeName=RUNS_TTL_ATTRIBUTE, Enabled=True),
        **_common(env, key, protected),
    )))


def add_content_index_table(t: Template, env: Environment, key, protected: str | None = None) -> dynamodb.Table:
    """No TTL here on purpose: an entry lives exactly as long as its content, and only the garbage
    collector, which knows what kept snapshots reference, may remove it.

    A first full run writes about two items per object (docs/scale.md): more than the 4,000 writes
    a second a new on-demand table sustains once the workers are raised for it, so an environment
    may pre-warm the table (`content_index_warm_writes`; billed once, and it never goes down)."""
    warm = {"WarmThroughput": dynamodb.WarmThroughput(WriteUnitsPerSecond=env.content_index_warm_writes)} \
        if env.content_index_warm_writes else {}
    return t.add_resource(retain(dynamodb.Table(
        "ContentIndexTable",
        AttributeDefinitions=[_string(CONTENT_PARTITION_KEY)],
        KeySchema=[dynamodb.KeySchema(AttributeName=CONTENT_PARTITION_KEY, KeyType="HASH")],
        **warm,
        **_common(env, key, protected),
    )))
