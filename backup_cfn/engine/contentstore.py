"""Store once: each distinct content lives at one key, named by its SHA-256, written by one job.

The content index item of a hash moves STORING (claimed by one job) -> STORED -> DELETING (the
collector) -> gone. Every transition is a conditional write, so any number of concurrent workers
and the collector agree on who may copy and who may delete. The safety argument is in
docs/engine.md; the steps below name the hook points the crash tests stop at.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.errors import RetryableJobError, SourceChanged
from backup_cfn.engine.hashing import whole_object_sha256
from backup_cfn.engine.settings import Settings

STORING, STORED, DELETING = "STORING", "STORED", "DELETING"
Hook = Callable[[str], None]
_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def no_hook(step: str) -> None:
    return None


@dataclass(frozen=True)
class SourceObject:
    bucket: str
    key: str
    etag: str
    size: int
    version_id: str | None = None

    def copy_source(self) -> dict:
        source = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id and self.version_id != "null":
            source["VersionId"] = self.version_id
        return source


@dataclass(frozen=True)
class StoreResult:
    copied_bytes: int = 0       # bytes this call copied into the store (0: already there)


def to_item(values: dict) -> dict:
    return {k: _serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict) -> dict:
    return {k: _deserialize(v) for k, v in item.items()}


def is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def key_of(sha256: str) -> dict:
    return {contract.CONTENT_PARTITION_KEY: {"S": sha256}}


def get_entry(dynamodb, table: str, sha256: str) -> dict | None:
    item = dynamodb.get_item(TableName=table, Key=key_of(sha256), ConsistentRead=True).get("Item")
    return from_item(item) if item else None


def conditional_update(dynamodb, **kwargs) -> bool:
    """UpdateItem with a condition; False (not an error) when the condition does not hold."""
    try:
        dynamodb.update_item(**kwargs)
        return True
    except ClientError as exc:
        if is_conditional_failure(exc):
            return False
        raise


def _claim_or_touch(dynamodb, settings: Settings, sha256: str, size: int, owner: str) -> tuple[str, dict | None]:
    """One conditional write for both usual cases: when no entry exists it creates the STORING claim
    ("claimed"); when the entry is STORED it touches `last_referenced` ("touched"), the claim's
    fields kept as they are (`if_not_exists`). Any other state refuses the write and comes back in
    the same request ("refused", the entry; ReturnValuesOnConditionCheckFailure)."""
    now = naming.iso_precise(settings.now())
    try:
        old = dynamodb.update_item(
            TableName=settings.content_table, Key=key_of(sha256),
            UpdateExpression=("SET #state = if_not_exists(#state, :storing), #owner = if_not_exists(#owner, :owner), "
                              "claimed_at = if_not_exists(claimed_at, :now), #size = if_not_exists(#size, :size), "
                              "last_referenced = :now"),
            ConditionExpression="attribute_not_exists(#pk) OR #state = :stored",
            ExpressionAttributeNames={"#pk": contract.CONTENT_PARTITION_KEY, "#state": "state", "#owner": "owner",
                                      "#size": "size"},
            ExpressionAttributeValues={":storing": {"S": STORING}, ":stored": {"S": STORED}, ":owner": {"S": owner},
                                       ":now": {"S": now}, ":size": {"N": str(size)}},
            ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ).get("Attributes")
    except ClientError as exc:
        if is_conditional_failure(exc):
            item = exc.response.get("Item")
            return "refused", from_item(item) if item else None
        raise
    # A new item has no old values; a STORED one had a state (and a last reference) before.
    return ("touched", None) if old and "state" in old else ("claimed", None)


def fresh_claim(settings: Settings, sha256: str, size: int, owner: str) -> dict:
    """The transaction item of a claim of content that has no entry: the entry `_claim_or_touch`
    creates on an absent entry, refused when there is one (the caller then claims as usual)."""
    now = naming.iso_precise(settings.now())
    return {"Update": {
        "TableName": settings.content_table, "Key": key_of(sha256),
        "UpdateExpression": "SET #state = :storing, #owner = :owner, claimed_at = :now, #size = :size, last_referenced = :now",
        "ConditionExpression": "attribute_not_exists(#pk)",
        "ExpressionAttributeNames": {"#pk": contract.CONTENT_PARTITION_KEY, "#state": "state", "#owner": "owner",
                                     "#size": "size"},
        "ExpressionAttributeValues": {":storing": {"S": STORING}, ":owner": {"S": owner}, ":now": {"S": now},
                                      ":size": {"N": str(size)}},
    }}


def store_claimed(clients, settings: Settings, sha256: str, source: SourceObject, owner: str,
                  hook: Hook = no_hook) -> StoreResult:
    """Copy and mark content this job has just claimed with a fresh claim (`fresh_claim`)."""
    return _store(clients, settings, sha256, source, owner, hook, fresh=True)


def _take_over(dynamodb, settings: Settings, sha256: str, seen: dict, owner: str) -> bool:
    """Claim an entry whose holder is dead (or is an earlier attempt of this very job), provided
    nobody changed it since we read it."""
    stamp = "deleting_at" if seen["state"] == DELETING else "claimed_at"
    return conditional_update(
        dynamodb, TableName=settings.content_table, Key=key_of(sha256),
        UpdateExpression="SET #state = :storing, #owner = :owner, claimed_at = :now REMOVE deleting_at",
        ConditionExpression="#state = :seen_state AND #stamp = :seen_stamp",
        ExpressionAttributeNames={"#state": "state", "#owner": "owner", "#stamp": stamp},
        ExpressionAttributeValues={
            ":storing": {"S": STORING}, ":owner": {"S": owner}, ":now": {"S": naming.iso_precise(settings.now())},
            ":seen_state": {"S": seen["state"]}, ":seen_stamp": {"S": seen[stamp]},
        },
    )


def _mark_stored(dynamodb, settings: Settings, sha256: str, size: int, owner: str) -> bool:
    now = naming.iso_precise(settings.now())
    return conditional_update(
        dynamodb, TableName=settings.content_table, Key=key_of(sha256),
        # The claim's owner and time stay as a record of who stored it: a later touch keeps them
        # (if_not_exists), so it does not write them again.
        UpdateExpression=("SET #state = :stored, stored_key = :key, #size = :size, last_referenced = :now, "
                          "first_seen = if_not_exists(first_seen, :now)"),
        ConditionExpression="#state = :storing AND #owner = :owner",
        ExpressionAttributeNames={"#state": "state", "#owner": "owner", "#size": "size"},
        ExpressionAttributeValues={
            ":stored": {"S": STORED}, ":storing": {"S": STORING}, ":owner": {"S": owner},
            ":key": {"S": naming.content_key(sha256)}, ":size": {"N": str(size)}, ":now": {"S": now},
        },
    )


def _is_stale(stamp: str | None, after_seconds: int, now: datetime) -> bool:
    return stamp is None or (now - naming.parse_iso(stamp)).total_seconds() > after_seconds


def head_content(s3, bucket: str, sha256: str) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=naming.content_key(sha256), ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in contract.MISSING_OBJECT_CODES:
            return None
        raise


def holds_content(head: dict | None, sha256: str, size: int) -> bool:
    """Whether a stored object is this content: its S3-computed SHA-256 when it has one (single
    copies always do), else its size (a multipart copy exists only once complete)."""
    if head is None or head.get("ContentLength") != size:
        return False
    stored = whole_object_sha256(head)
    return stored is None or stored == sha256


def ensure_stored(clients, settings: Settings, sha256: str, source: SourceObject, owner: str,
                  hook: Hook = no_hook, *, likely_stored: bool = True) -> StoreResult:
    """Make the content with this hash stored and referenced-now, copying it from `source` only
    if no other job has stored it. Raises RetryableJobError when another live job holds it.

    One write in both usual cases (engine/contentstore.py `_claim_or_touch`): new content is
    claimed, stored content touched. `likely_stored` is kept for callers; the write is the same."""
    del likely_stored
    waited, delay = 0.0, 0.05
    entry: dict | None = None
    known = False   # whether `entry` was just read (a refused write returns it)
    while True:
        if not known:
            outcome, entry = _claim_or_touch(clients.dynamodb, settings, sha256, source.size, owner)
            if outcome == "touched":
                return StoreResult()
            if outcome == "claimed":
                # A fresh claim: the collector deletes the object before the entry, so no entry
                # means no current object, and nothing to look for before copying.
                return _store(clients, settings, sha256, source, owner, hook, fresh=True)
            if entry is None:
                continue  # deleted between the write and its refusal: try again
        known = False
        now = settings.now()
        state = entry.get("state")
        if state == STORED:
            continue      # stored since it refused us: the next write touches it
        if state == STORING and (entry.get("owner") == owner
                                 or _is_stale(entry.get("claimed_at"), settings.stale_after_seconds, now)):
            if _take_over(clients.dynamodb, settings, sha256, entry, owner):
                return _store(clients, settings, sha256, source, owner, hook, fresh=False)
            continue
        if state == DELETING and _is_stale(entry.get("deleting_at"), settings.stale_deleting_after_seconds, now):
            if _take_over(clients.dynamodb, settings, sha256, entry, owner):
                return _store(clients, settings, sha256, source, owner, hook, fresh=False)
            continue
        if waited >= settings.claim_wait_seconds:
            holder = entry.get("owner", "the garbage collector")
            raise RetryableJobError(f"content {sha256[:16]} is {state} by {holder}; retrying later")
        settings.sleep(delay)
        waited += delay
        delay = min(delay * 2, 1.0)
        entry, known = get_entry(clients.dynamodb, settings.content_table, sha256), True
        if entry is None:
            known = False


def _store(clients, settings: Settings, sha256: str, source: SourceObject, owner: str, hook: Hook,
           *, fresh: bool) -> StoreResult:
    hook("claimed_content")
    copied = 0
    # A taken-over claim may belong to an attempt that copied and died before marking; copying
    # again would leave a second version in the versioned bucket, so look first.
    if fresh or not holds_content(head_content(clients.s3, settings.backup_bucket, sha256), sha256, source.size):
        copy_content(clients.s3, settings, sha256, source)
        copied = source.size
        hook("copied")
    if not _mark_stored(clients.dynamodb, settings, sha256, source.size, owner):
        raise RetryableJobError(f"content {sha256[:16]}: claim taken over while copying; retrying later")
    hook("marked_stored")
    return StoreResult(copied_bytes=copied)


def copy_content(s3, settings: Settings, sha256: str, source: SourceObject) -> None:
    """Server-side copy, so the content never passes through the worker; S3 computes the copy's
    SHA-256, which must equal the hash the content is stored under."""
    key = naming.content_key(sha256)
    if source.size > settings.multipart_threshold:
        _multipart_copy(s3, settings, key, source)
        return
    try:
        result = s3.copy_object(
            Bucket=settings.backup_bucket, Key=key, CopySource=source.copy_source(), CopySourceIfMatch=source.etag,
            # REPLACE, with none given: shared content carries neither one user's object metadata nor
            # their tags (copying tags would also need tagging permissions on both sides).
            ChecksumAlgorithm="SHA256", MetadataDirective="REPLACE", TaggingDirective="REPLACE", **settings.sse(),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            raise SourceChanged(f"{source.key} changed while being backed up; retrying later") from exc
        raise
    stored = whole_object_sha256(result.get("CopyObjectResult", {}))
    if stored is not None and stored != sha256:
        raise SourceChanged(f"{source.key} changed while being backed up (copied content does not match)")


def _multipart_copy(s3, settings: Settings, key: str, source: SourceObject) -> None:
    upload = s3.create_multipart_upload(Bucket=settings.backup_bucket, Key=key, ChecksumAlgorithm="SHA256",
                                        **settings.sse())
    upload_id = upload["UploadId"]
    parts = []
    try:
        for number, start in enumerate(range(0, source.size, settings.multipart_part_size), start=1):
            end = min(start + settings.multipart_part_size, source.size) - 1
            part = s3.upload_part_copy(
                Bucket=settings.backup_bucket, Key=key, UploadId=upload_id, PartNumber=number,
                CopySource=source.copy_source(), CopySourceIfMatch=source.etag, CopySourceRange=f"bytes={start}-{end}",
            )["CopyPartResult"]
            parts.append({"PartNumber": number, "ETag": part["ETag"],
                          **({"ChecksumSHA256": part["ChecksumSHA256"]} if part.get("ChecksumSHA256") else {})})
        s3.complete_multipart_upload(Bucket=settings.backup_bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    except BaseException:
        try:
            s3.abort_multipart_upload(Bucket=settings.backup_bucket, Key=key, UploadId=upload_id)
        except ClientError:
            pass  # the bucket's lifecycle rule aborts incomplete uploads after a day
        raise
