"""What AWS authorises for each API call: the IAM actions on which resources, with which request
context, and the KMS uses the service makes with the caller's permissions.

Sources: the Service Authorization Reference (each API's actions and condition keys), the S3 User
Guide ("Required permissions for Amazon S3 API operations", "Using SSE-KMS" and "Reducing the cost
of SSE-KMS with Amazon S3 Bucket Keys": with a bucket key the KMS encryption context is the bucket's
ARN), the DynamoDB Developer Guide (TransactWriteItems and TransactGetItems are authorised per item
action; encryption at rest uses the table key through DynamoDB), the SQS and SNS guides (a producer
needs kms:GenerateDataKey and kms:Decrypt, a consumer kms:Decrypt).

A call whose operation is not in the table raises UntranslatedCall: a call added to the code
cannot pass the conformance test unexamined.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from backup_cfn.permissions.model import PRIMARY_STACK, REPLICA_STACK, DeploymentModel, Stored
from backup_cfn.permissions.recorder import Call


class UntranslatedCall(Exception):
    """An operation this table does not know: add what AWS authorises it with."""


class UnknownResource(Exception):
    """A call names a resource neither the templates nor the recording's aliases know."""


@dataclass(frozen=True)
class Need:
    """One authorisation AWS makes for a call."""
    action: str
    resource: str
    context: dict = field(default_factory=dict)
    why: str = ""

    def key(self) -> tuple:
        return self.action, self.resource, tuple(sorted((k, str(v)) for k, v in self.context.items()))


def _resource(model: DeploymentModel, call: Call, name: str) -> Stored:
    found = model.find(name, call.aliases)
    if found is None:
        raise UnknownResource(f"{call.service}.{call.operation} names {name!r}, which no template holds")
    return found


def _s3_bucket(model: DeploymentModel, call: Call, name: str) -> Stored | str:
    """A bucket of the stacks, or (a restore target elsewhere) a bare name."""
    return model.find(name, call.aliases) or name


def _bucket_arn(bucket: Stored | str) -> str:
    return bucket.arn if isinstance(bucket, Stored) else f"arn:aws:s3:::{bucket}"


def kms_through(model: DeploymentModel, service: str, region: str, key_arn: str | None, actions: tuple[str, ...],
                context: dict, why: str) -> list[Need]:
    """The caller's permission to use a key, as a service using it on the caller's behalf asks for it."""
    if not key_arn:
        return []
    ctx = {"kms:ViaService": f"{service}.{region}.amazonaws.com", "kms:CallerAccount": model.account, **context}
    return [Need(action, key_arn, ctx, why) for action in actions]


def _s3_key_context(bucket: Stored | str) -> dict:
    # Both stacks' buckets use S3 Bucket Keys: the context is the bucket's ARN, not the object's.
    return {"kms:EncryptionContext:aws:s3:arn": _bucket_arn(bucket)}


def _object(bucket: Stored | str, key: str) -> str:
    return f"{_bucket_arn(bucket)}/{key}"


def _sse_context(model: DeploymentModel, call: Call, params: dict) -> dict:
    """The encryption headers a request sends, as the bucket policy's condition keys see them."""
    context = {}
    if params.get("ServerSideEncryption"):
        context["s3:x-amz-server-side-encryption"] = params["ServerSideEncryption"]
    if params.get("SSEKMSKeyId"):
        named = model.find(params["SSEKMSKeyId"], call.aliases)
        context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = named.arn if named else params["SSEKMSKeyId"]
    return context


def _write_key(model: DeploymentModel, call: Call, bucket: Stored | str, params: dict) -> str | None:
    if params.get("SSEKMSKeyId"):
        named = model.find(params["SSEKMSKeyId"], call.aliases)
        return named.arn if named else params["SSEKMSKeyId"]
    return bucket.key_arn if isinstance(bucket, Stored) else None


def _region(bucket: Stored | str, call: Call) -> str:
    return bucket.region if isinstance(bucket, Stored) else call.region


def _read(model: DeploymentModel, call: Call, bucket: Stored | str, key: str, version: str | None, why: str,
          decrypt: bool = True, requested_in: str | None = None) -> list[Need]:
    """A read of an object; `requested_in`: the Region the request goes to, when that is not the
    bucket's (a copy is sent to its destination's Region)."""
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    needs = [Need(action, _object(bucket, key), {}, why)]
    if decrypt and isinstance(bucket, Stored):
        for region in dict.fromkeys((bucket.region, requested_in or bucket.region)):
            needs += kms_through(model, "s3", region, bucket.key_arn, ("kms:Decrypt",), _s3_key_context(bucket),
                                 why + f": S3 decrypts the object (asked from {region})")
    return needs


# Whether an S3 operation creates an object, as s3:ObjectCreationOperation says it (S3 User Guide,
# "Enforce conditional writes on Amazon S3 buckets": the multipart calls that cannot carry a
# conditional header are not creations).
CREATES_OBJECT = {"PutObject": "true", "CopyObject": "true", "CompleteMultipartUpload": "true",
                  "CreateMultipartUpload": "false", "UploadPart": "false", "UploadPartCopy": "false"}


def _write_context(model: DeploymentModel, call: Call, params: dict) -> dict:
    """The condition keys a write carries: its encryption headers, whether it creates an object,
    its conditional header, and what it copies from (the copy source in the templates' names)."""
    context = _sse_context(model, call, params)
    if call.operation in CREATES_OBJECT:
        context["s3:ObjectCreationOperation"] = CREATES_OBJECT[call.operation]
    if params.get("IfNoneMatch"):
        context["s3:if-none-match"] = params["IfNoneMatch"]
    if params.get("IfMatch"):
        context["s3:if-match"] = params["IfMatch"]
    if params.get("CopySource"):
        source, key, version = _copy_source(model, call)
        name = source.name if isinstance(source, Stored) else source
        context["s3:x-amz-copy-source"] = f"{name}/{key}" + (f"?versionId={version}" if version else "")
    return context


def _copy_source_read(model: DeploymentModel, call: Call, destination: Stored | str, why: str) -> list[Need]:
    """The source of a copy. The copy is a request to the destination's Region; when the source is in
    another Region, AWS does not document which Region's S3 asks the source's key to decrypt, so both
    requests are evaluated and both must be allowed."""
    source, source_key, version = _copy_source(model, call)
    return _read(model, call, source, source_key, version, why, requested_in=_region(destination, call))


def _write(model: DeploymentModel, call: Call, bucket: Stored | str, key: str, params: dict, why: str,
           kms_actions: tuple[str, ...] = ("kms:GenerateDataKey",)) -> list[Need]:
    needs = [Need("s3:PutObject", _object(bucket, key), _write_context(model, call, params), why)]
    if params.get("Tagging"):
        needs.append(Need("s3:PutObjectTagging", _object(bucket, key), {}, why + " with tags"))
    needs += kms_through(model, "s3", _region(bucket, call), _write_key(model, call, bucket, params), kms_actions,
                         _s3_key_context(bucket), why + ": S3 encrypts the object")
    return needs


def _copy_source(model: DeploymentModel, call: Call) -> tuple[Stored | str, str, str | None]:
    source = call.params["CopySource"]
    if isinstance(source, str):   # "bucket/key?versionId=..."
        path, _, query = source.partition("?versionId=")
        bucket, _, key = path.lstrip("/").partition("/")
        return _s3_bucket(model, call, bucket), key, query or None
    return _s3_bucket(model, call, source["Bucket"]), source["Key"], source.get("VersionId")


# --- S3 ---------------------------------------------------------------------------------------

def s3_list(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    context = {f"s3:{k.lower()}": call.params[k] for k in ("Prefix", "Delimiter") if call.params.get(k)}
    return [Need("s3:ListBucket", _bucket_arn(bucket), context, "list the bucket")]


def s3_list_versions(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    return [Need("s3:ListBucketVersions", _bucket_arn(bucket), {}, "list object versions")]


def s3_head(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    return _read(model, call, bucket, call.params["Key"], call.params.get("VersionId"), "HeadObject", decrypt=False)


def s3_get(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    return _read(model, call, bucket, call.params["Key"], call.params.get("VersionId"), "GetObject")


def s3_put(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    return _write(model, call, bucket, call.params["Key"], call.params, "PutObject")


def s3_copy(model, call):
    """Read the source (and, with TaggingDirective COPY, the default, its tags), write the destination."""
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    source, source_key, version = _copy_source(model, call)
    needs = _copy_source_read(model, call, bucket, "CopyObject source")
    needs += _write(model, call, bucket, call.params["Key"], call.params, "CopyObject destination")
    if call.params.get("TaggingDirective", "COPY") == "COPY":
        tagging = "s3:GetObjectVersionTagging" if version else "s3:GetObjectTagging"
        needs += [Need(tagging, _object(source, source_key), {}, "CopyObject copies the source's tags (COPY)"),
                  Need("s3:PutObjectTagging", _object(bucket, call.params["Key"]), {},
                       "CopyObject copies the source's tags (COPY)")]
    return needs


def s3_create_multipart(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    # A multipart upload with SSE-KMS needs kms:Decrypt as well (S3 User Guide, multipart upload and permissions).
    return _write(model, call, bucket, call.params["Key"], call.params, "CreateMultipartUpload",
                  ("kms:GenerateDataKey", "kms:Decrypt"))


def s3_upload_part_copy(model, call):
    """A part carries no encryption headers: the destination's PutObject is authorised without them."""
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    needs = _copy_source_read(model, call, bucket, "UploadPartCopy source")
    needs.append(Need("s3:PutObject", _object(bucket, call.params["Key"]), _write_context(model, call, {
        "CopySource": call.params["CopySource"]}), "UploadPartCopy"))
    if isinstance(bucket, Stored):
        needs += kms_through(model, "s3", bucket.region, bucket.key_arn, ("kms:Decrypt",), _s3_key_context(bucket),
                             "UploadPartCopy: S3 encrypts the part with the upload's data key")
    return needs


def s3_complete_multipart(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    return [Need("s3:PutObject", _object(bucket, call.params["Key"]), _write_context(model, call, {}),
                 "CompleteMultipartUpload")]


def s3_put_retention(model, call):
    """Extending a lock is PutObjectRetention; shortening or lifting a governance lock also needs
    s3:BypassGovernanceRetention (with the bypass header), which the code never sends."""
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    mode = call.params.get("Retention", {}).get("Mode", "")
    needs = [Need("s3:PutObjectRetention", _object(bucket, call.params["Key"]), {"s3:object-lock-mode": mode},
                  "PutObjectRetention")]
    if call.params.get("BypassGovernanceRetention"):
        needs.append(Need("s3:BypassGovernanceRetention", _object(bucket, call.params["Key"]), {},
                          "PutObjectRetention with the bypass header"))
    return needs


def s3_object_action(action: str, version_action: str | None = None):
    """An operation on one object: its action, or the version's when the call names a version."""
    def translate(model, call):
        bucket = _s3_bucket(model, call, call.params["Bucket"])
        chosen = version_action if version_action and call.params.get("VersionId") else action
        return [Need(chosen, _object(bucket, call.params["Key"]), {}, call.operation)]
    return translate


def s3_bucket_action(action: str):
    """An operation on the bucket itself (its configuration)."""
    def translate(model, call):
        bucket = _s3_bucket(model, call, call.params["Bucket"])
        return [Need(action, _bucket_arn(bucket), {}, call.operation)]
    return translate


def s3_delete_many(model, call):
    bucket = _s3_bucket(model, call, call.params["Bucket"])
    return [Need("s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject", _object(bucket, o["Key"]), {},
                 "DeleteObjects: each key") for o in call.params["Delete"]["Objects"]]


# --- DynamoDB ---------------------------------------------------------------------------------

def _table_key_use(model, call, table: Stored) -> list[Need]:
    return kms_through(model, "dynamodb", table.region, table.key_arn, ("kms:Decrypt",),
                       {"kms:EncryptionContext:aws:dynamodb:tableName": table.name,
                        "kms:EncryptionContext:aws:dynamodb:subscriberId": model.account},
                       f"{call.operation}: DynamoDB reads the table key")


def _partition_key(model: DeploymentModel, table: Stored) -> str | None:
    """The table's partition key attribute, from its template."""
    resource = model.templates[table.stack]["Resources"].get(table.logical_id, {})
    return next((k["AttributeName"] for k in resource.get("Properties", {}).get("KeySchema", [])
                 if k.get("KeyType") == "HASH"), None)


def _leading_keys(model: DeploymentModel, table: Stored, items: list[dict]) -> dict:
    """dynamodb:LeadingKeys: the partition key values the request names (DynamoDB Developer Guide,
    "Using IAM policy conditions for fine-grained access control")."""
    name = _partition_key(model, table)
    values = tuple(sorted({next(iter(item[name].values())) for item in items if item and name in item}))
    return {"dynamodb:LeadingKeys": values} if values else {}


def _query_leading_key(model: DeploymentModel, table: Stored, params: dict) -> dict:
    """A Query on the table (not an index) names one partition key value in its key condition."""
    if params.get("IndexName"):
        return {}
    name = _partition_key(model, table)
    names = params.get("ExpressionAttributeNames", {})
    for left, right in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
        if names.get(left, left) == name and right in params.get("ExpressionAttributeValues", {}):
            return {"dynamodb:LeadingKeys": (next(iter(params["ExpressionAttributeValues"][right].values())),)}
    return {}


def dynamodb_item(action: str):
    def translate(model, call):
        table = _resource(model, call, call.params["TableName"])
        resource = f"{table.arn}/index/{call.params['IndexName']}" if call.params.get("IndexName") else table.arn
        if call.operation == "Query":
            context = _query_leading_key(model, table, call.params)
        else:
            context = _leading_keys(model, table, [call.params.get("Key") or call.params.get("Item") or {}])
        return [Need(action, resource, context, call.operation)] + _table_key_use(model, call, table)
    return translate


def dynamodb_batch(action: str, field_name: str):
    def translate(model, call):
        needs = []
        for name, request in call.params[field_name].items():
            table = _resource(model, call, name)
            keys = request.get("Keys") if isinstance(request, dict) else \
                [(w.get("PutRequest", {}).get("Item") or w.get("DeleteRequest", {}).get("Key")) for w in request]
            needs += [Need(action, table.arn, _leading_keys(model, table, keys or []), call.operation)]
            needs += _table_key_use(model, call, table)
        return needs
    return translate


_TRANSACT_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                     "ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem"}


def dynamodb_transact(model, call):
    """No action of its own: each item is authorised as the single-item action it performs."""
    needs = []
    for item in call.params["TransactItems"]:
        (kind, body), = item.items()
        table = _resource(model, call, body["TableName"])
        needs += [Need(_TRANSACT_ACTIONS[kind], table.arn,
                       _leading_keys(model, table, [body.get("Key") or body.get("Item") or {}]),
                       f"{call.operation}: a {kind} item")]
        needs += _table_key_use(model, call, table)
    return needs


# --- SQS, SNS, CloudFormation, Lambda ---------------------------------------------------------

def sqs(action: str, kms_actions: tuple[str, ...] = ()):
    def translate(model, call):
        queue = _resource(model, call, call.params["QueueUrl"])
        needs = [Need(action, queue.arn, {}, call.operation)]
        return needs + kms_through(model, "sqs", queue.region, queue.key_arn, kms_actions,
                                   {"kms:EncryptionContext:aws:sqs:arn": queue.arn}, f"{call.operation}: SQS encryption")
    return translate


def sns_publish(model, call):
    topic = _resource(model, call, call.params["TopicArn"])
    return [Need("sns:Publish", topic.arn, {}, "Publish")] + kms_through(
        model, "sns", topic.region, topic.key_arn, ("kms:GenerateDataKey", "kms:Decrypt"), {}, "Publish: SNS encryption")


def describe_stacks(model, call):
    name = call.params["StackName"]
    name = {PRIMARY_STACK: model.env.stack_name, REPLICA_STACK: model.env.dr_stack_name}.get(
        call.aliases.get(name), name)
    return [Need("cloudformation:DescribeStacks", model.stack_arn(name), {}, "read stack outputs")]


def events_rule(action: str):
    """An EventBridge rule of the default bus, by name."""
    def translate(model, call):
        name = call.params.get("Name") or call.params["Rule"]
        return [Need(action, f"arn:aws:events:{call.region}:{model.account}:rule/{name}", {}, call.operation)]
    return translate


def kms_direct(action: str):
    """A key used directly, not by a service on the caller's behalf (no kms:ViaService)."""
    def translate(model, call):
        key = _resource(model, call, call.params["KeyId"])
        return [Need(action, key.arn, {"kms:CallerAccount": model.account}, call.operation)]
    return translate


def cloudwatch_read(action: str):
    """CloudWatch's metric reads take no resource (Service Authorization Reference)."""
    def translate(model, call):
        return [Need(action, "*", {}, call.operation)]
    return translate


def lambda_invoke(model, call):
    function = _resource(model, call, call.params["FunctionName"])
    return [Need("lambda:InvokeFunction", function.arn, {}, "Invoke")]


def no_permission(model, call):
    """GetCallerIdentity: AWS answers it for any credentials (STS API reference)."""
    return []


TRANSLATIONS: dict[tuple[str, str], Callable[[DeploymentModel, Call], list[Need]]] = {
    ("s3", "ListObjectsV2"): s3_list, ("s3", "ListObjects"): s3_list, ("s3", "HeadBucket"): s3_list,
    ("s3", "ListObjectVersions"): s3_list_versions,
    ("s3", "HeadObject"): s3_head, ("s3", "GetObject"): s3_get, ("s3", "PutObject"): s3_put,
    ("s3", "CopyObject"): s3_copy, ("s3", "CreateMultipartUpload"): s3_create_multipart,
    ("s3", "UploadPartCopy"): s3_upload_part_copy, ("s3", "CompleteMultipartUpload"): s3_complete_multipart,
    ("s3", "AbortMultipartUpload"): s3_object_action("s3:AbortMultipartUpload"),
    ("s3", "DeleteObject"): s3_object_action("s3:DeleteObject", "s3:DeleteObjectVersion"),
    ("s3", "DeleteObjects"): s3_delete_many,
    ("s3", "GetObjectTagging"): s3_object_action("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("s3", "PutObjectTagging"): s3_object_action("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    ("s3", "GetBucketNotificationConfiguration"): s3_bucket_action("s3:GetBucketNotification"),
    ("s3", "PutBucketNotificationConfiguration"): s3_bucket_action("s3:PutBucketNotification"),
    ("s3", "GetObjectRetention"): s3_object_action("s3:GetObjectRetention"),
    ("s3", "PutObjectRetention"): s3_put_retention,
    ("dynamodb", "GetItem"): dynamodb_item("dynamodb:GetItem"), ("dynamodb", "PutItem"): dynamodb_item("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): dynamodb_item("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): dynamodb_item("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): dynamodb_item("dynamodb:Query"), ("dynamodb", "Scan"): dynamodb_item("dynamodb:Scan"),
    ("dynamodb", "BatchGetItem"): dynamodb_batch("dynamodb:BatchGetItem", "RequestItems"),
    ("dynamodb", "BatchWriteItem"): dynamodb_batch("dynamodb:BatchWriteItem", "RequestItems"),
    ("dynamodb", "TransactWriteItems"): dynamodb_transact, ("dynamodb", "TransactGetItems"): dynamodb_transact,
    ("sqs", "SendMessage"): sqs("sqs:SendMessage", ("kms:GenerateDataKey", "kms:Decrypt")),
    ("sqs", "SendMessageBatch"): sqs("sqs:SendMessage", ("kms:GenerateDataKey", "kms:Decrypt")),
    ("sqs", "ReceiveMessage"): sqs("sqs:ReceiveMessage", ("kms:Decrypt",)),
    ("sqs", "DeleteMessage"): sqs("sqs:DeleteMessage"), ("sqs", "DeleteMessageBatch"): sqs("sqs:DeleteMessage"),
    ("sqs", "ChangeMessageVisibility"): sqs("sqs:ChangeMessageVisibility"),
    ("sqs", "ChangeMessageVisibilityBatch"): sqs("sqs:ChangeMessageVisibility"),
    ("sqs", "GetQueueAttributes"): sqs("sqs:GetQueueAttributes"),
    ("sns", "Publish"): sns_publish,
    ("cloudformation", "DescribeStacks"): describe_stacks,
    ("lambda", "Invoke"): lambda_invoke,
    ("events", "PutRule"): events_rule("events:PutRule"), ("events", "DisableRule"): events_rule("events:DisableRule"),
    ("events", "PutTargets"): events_rule("events:PutTargets"),
    ("events", "RemoveTargets"): events_rule("events:RemoveTargets"),
    ("kms", "Decrypt"): kms_direct("kms:Decrypt"),
    ("cloudwatch", "GetMetricData"): cloudwatch_read("cloudwatch:GetMetricData"),
    ("sts", "GetCallerIdentity"): no_permission,
}


def needs_of(model: DeploymentModel, call: Call) -> list[Need]:
    translate = TRANSLATIONS.get((call.service, call.operation))
    if translate is None:
        raise UntranslatedCall(f"{call.principal} calls {call.service}.{call.operation}, which "
                               "backup_cfn/permissions/requests.py does not translate: add what AWS authorises it with")
    return translate(model, call)
