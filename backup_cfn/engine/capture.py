"""Continuous protection: S3's events for the source bucket, as EventBridge puts them on the capture
queue, become each user's changes in the journal, within seconds of the change.

One invocation takes a batch of events (the queue's event source mapping gathers up to
contract.CAPTURE_BATCH_SIZE for up to contract.CAPTURE_BATCHING_WINDOW_SECONDS), groups them by user,
reads and stores each new content once through the same store-once protocol as the nightly run
(engine/contentstore.py, so the same deduplication), and writes one journal segment per user
(engine/journal.py) after every content it names is stored. A message is reported failed
(ReportBatchItemFailures) only when its change could not be recorded; anything that is not a change
of a user's file is counted and dropped, never retried.

Events (S3 User Guide, "EventBridge event message structure",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html): `time` is when the change
happened; `detail.object` names the key, for a created object its size, etag and (versioned bucket)
version-id, and a `sequencer` that orders the events of one key; `detail.deletion-type` is
"Delete Marker Created" (the object is hidden) or "Permanently Deleted" (a version is gone; the key
may still show an older one). EventBridge delivers at least once and retries for up to 24 hours
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html), so events come
twice, late and out of order: a change is recorded with S3's time and sequencer, and readers order
and de-duplicate (engine/pointintime.py).
"""
from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import journal, naming
from backup_cfn.engine.attempts import Deadline
from backup_cfn.engine.contentstore import Hook, SourceObject, ensure_stored, no_hook
from backup_cfn.engine.errors import SourceChanged
from backup_cfn.engine.hashing import stream_sha256, whole_object_sha256
from backup_cfn.engine.journal import DELETE, PUT, Change, Segment
from backup_cfn.engine.settings import Settings

CREATED, DELETED = "Object Created", "Object Deleted"
DELETE_MARKER_CREATED = "Delete Marker Created"
# Objects at least this large are looked at (HEAD) before being read: S3 may keep their SHA-256.
HEAD_FIRST_BYTES = 8 * 1024 * 1024
_CHANGED = ("412", "PreconditionFailed")
_GONE = contract.MISSING_OBJECT_CODES + ("NoSuchVersion",)
# Why a put's content is not in the store (journal Change.skipped).
DELETED_BEFORE_CAPTURE = "deleted before it could be captured"
OVERWRITTEN_BEFORE_CAPTURE = "overwritten before it could be captured"
LEFT_TO_NIGHTLY = "too large to capture at once without a SHA-256 stored by S3: left to the nightly run"


@dataclass(frozen=True)
class Record:
    """One message of the capture queue as the event source mapping delivered it."""
    message_id: str
    body: str
    receipt_handle: str = ""
    receive_count: int = 1


@dataclass(frozen=True)
class SourceEvent:
    """An S3 event about one user's file."""
    message_id: str
    user: str
    path: str
    key: str
    detail_type: str
    time: str
    sequencer: str
    event_id: str
    version_id: str | None
    size: int
    etag: str
    deletion_type: str


def parse_event(record: Record, source_bucket: str) -> SourceEvent | str:
    """The change an event reports, or why it reports none (a string): such an event is dropped."""
    try:
        event = json.loads(record.body)
    except (TypeError, ValueError):
        return "not JSON"
    if not isinstance(event, dict) or event.get("source") != "aws.s3":
        return "not an S3 event"
    if event.get("detail-type") not in (CREATED, DELETED):
        return f"not a change: {str(event.get('detail-type'))[:40]!r}"
    detail = event.get("detail")
    obj = detail.get("object") if isinstance(detail, dict) else None
    bucket = (detail.get("bucket") or {}).get("name") if isinstance(detail, dict) else None
    if bucket != source_bucket:
        return f"another bucket: {str(bucket)[:64]!r}"
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        return "no object key"
    try:
        moment = naming.parse_iso(str(event.get("time")))
    except ValueError:
        return f"no valid time: {str(event.get('time'))[:40]!r}"
    key = obj["key"]
    user, slash, path = key.partition("/")
    if not slash or not naming.is_valid_user(user) or not path:
        return "not under a user's folder"
    if path.endswith("/"):
        return "a folder marker"
    size = obj.get("size", 0)
    return SourceEvent(
        message_id=record.message_id, user=user, path=path, key=key, detail_type=event["detail-type"],
        time=naming.iso(moment), sequencer=str(obj.get("sequencer") or ""), event_id=str(event.get("id") or ""),
        version_id=obj.get("version-id") if isinstance(obj.get("version-id"), str) else None,
        size=size if isinstance(size, int) and size >= 0 else 0, etag=str(obj.get("etag") or ""),
        deletion_type=str(detail.get("deletion-type") or ""))


@dataclass
class BatchOutcome:
    captured: int = 0
    ignored: list[tuple[str, str]] = field(default_factory=list)     # (message ID, why)
    failed: dict[str, str] = field(default_factory=dict)             # message ID -> error
    segments: list[str] = field(default_factory=list)
    users_bursting: list[str] = field(default_factory=list)
    latency_seconds: float = 0.0      # the oldest change at capture: its age when its segment was written

    def failed_ids(self) -> list[str]:
        return list(self.failed)


class _OutOfTime(Exception):
    """The invocation's reserve is reached: this change is left for another delivery."""


def capture_batch(clients, settings: Settings, records: list[Record], *, deadline: Deadline | None = None,
                  hook: Hook = no_hook) -> BatchOutcome:
    """Record every change the batch reports; returns what was captured, dropped and failed."""
    outcome = BatchOutcome()
    deadline = deadline or Deadline.unlimited()
    by_user: dict[str, list[SourceEvent]] = defaultdict(list)
    for record in records:
        parsed = parse_event(record, settings.source_bucket)
        if isinstance(parsed, str):
            outcome.ignored.append((record.message_id, parsed))
        else:
            by_user[parsed.user].append(parsed)
    if not by_user:
        return outcome
    reader = _ChangeReader(clients, settings, deadline, hook)
    events = [event for user_events in by_user.values() for event in user_events]
    with ThreadPoolExecutor(max_workers=settings.job_threads) as pool:
        results = dict(zip((e.message_id for e in events), pool.map(reader.change_of, events)))
    for user, user_events in sorted(by_user.items()):
        changes = []
        for event in user_events:
            result = results[event.message_id]
            if isinstance(result, Change):
                changes.append(result)
            else:
                outcome.failed[event.message_id] = result
        if changes:
            try:
                segment = Segment(user, naming.iso_precise(settings.now()), journal.sorted_changes(changes))
                outcome.segments.append(journal.write_segment(clients.s3, settings.backup_bucket, segment, settings.sse()))
            except ClientError as exc:
                for event in user_events:
                    outcome.failed.setdefault(event.message_id, f"journal segment not written: {_error(exc)}")
                continue
            hook("segment_written")
            captured = [e for e in user_events if e.message_id not in outcome.failed]
            outcome.captured += len(captured)
            written = settings.now()
            outcome.latency_seconds = max([outcome.latency_seconds] + [
                (written - naming.parse_iso(e.time)).total_seconds() for e in captured])
        if count_burst(clients.dynamodb, settings, user, len(user_events)):
            outcome.users_bursting.append(user)
    return outcome


class _ChangeReader:
    """Each event's change, content stored first; a failure is returned as a string (the message is
    then reported failed), never raised: the other changes of the batch go on."""

    def __init__(self, clients, settings: Settings, deadline: Deadline, hook: Hook):
        self.clients, self.settings, self.deadline, self.hook = clients, settings, deadline, hook
        self.owner = f"capture/{uuid.uuid4().hex}"
        self._stored: set[str] = set()
        self._turns: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def change_of(self, event: SourceEvent) -> Change | str:
        try:
            if self.deadline.passed():
                raise _OutOfTime()
            if event.detail_type == DELETED and event.deletion_type == DELETE_MARKER_CREATED:
                return self._change(event, DELETE, version_id=event.version_id)
            if event.detail_type == DELETED:
                return self._after_permanent_delete(event)
            return self._put(event, event.version_id, event.etag, event.size)
        except _OutOfTime:
            return "the invocation's time ran out before this change; retried"
        except Exception as exc:  # noqa: BLE001 - reported as this message's failure
            return f"{type(exc).__name__}: {_error(exc) if isinstance(exc, ClientError) else exc}"[:500]

    def _change(self, event: SourceEvent, op: str, **fields) -> Change:
        return Change(path=event.path, op=op, time=event.time, sequencer=event.sequencer, event_id=event.event_id,
                      **fields)

    def _after_permanent_delete(self, event: SourceEvent) -> Change:
        """A version is gone for good: the key now shows an older version, or nothing. S3's events do
        not say which, so the key is looked at now."""
        s3, bucket = self.clients.s3, self.settings.source_bucket
        try:
            head = s3.head_object(Bucket=bucket, Key=event.key)
        except ClientError as exc:
            if _code(exc) in _GONE:
                return self._change(event, DELETE, version_id=event.version_id)
            raise
        return self._put(event, head.get("VersionId"), head["ETag"], head["ContentLength"])

    def _put(self, event: SourceEvent, version_id: str | None, etag: str, size: int) -> Change:
        s3, bucket = self.clients.s3, self.settings.source_bucket
        versioned = bool(version_id) and version_id != "null"
        pin = {"VersionId": version_id} if versioned else {"IfMatch": _quoted(etag)}
        try:
            sha256, meta = None, None
            if size >= HEAD_FIRST_BYTES:
                meta = s3.head_object(Bucket=bucket, Key=event.key, ChecksumMode="ENABLED", **pin)
                sha256 = whole_object_sha256(meta)
                if sha256 is None and meta["ContentLength"] > self.settings.capture_max_hash_bytes:
                    return self._change(event, PUT, version_id=version_id, size=meta["ContentLength"],
                                        etag=meta["ETag"], skipped=LEFT_TO_NIGHTLY)
            if sha256 is None:
                sha256, _, meta = stream_sha256(s3, bucket, event.key, version_id=version_id if versioned else None,
                                                etag=_quoted(etag))
        except ClientError as exc:
            if _code(exc) in _GONE:
                return self._change(event, PUT, version_id=version_id, skipped=DELETED_BEFORE_CAPTURE)
            if _code(exc) in _CHANGED:
                return self._change(event, PUT, version_id=version_id, skipped=OVERWRITTEN_BEFORE_CAPTURE)
            raise
        found_version = meta.get("VersionId") or version_id
        source = SourceObject(bucket, event.key, meta["ETag"], meta["ContentLength"],
                              found_version if versioned else None)
        try:
            self._store(sha256, source)
        except SourceChanged:
            return self._change(event, PUT, version_id=version_id, skipped=OVERWRITTEN_BEFORE_CAPTURE)
        return self._change(event, PUT, version_id=found_version if versioned else None, sha256=sha256,
                            size=meta["ContentLength"], etag=meta["ETag"],
                            last_modified=naming.iso(meta["LastModified"]))

    def _store(self, sha256: str, source: SourceObject) -> None:
        """Each content stored (or touched) once per invocation, however many changes carry it: the
        changes with one hash take turns, and the first that succeeds stores it for all."""
        with self._lock:
            turn = self._turns.setdefault(sha256, threading.Lock())
        with turn:
            if sha256 in self._stored:
                return
            ensure_stored(self.clients, self.settings, sha256, source, self.owner, self.hook, likely_stored=False)
            self._stored.add(sha256)
        self.hook("stored")


def count_burst(dynamodb, settings: Settings, user: str, changes: int) -> bool:
    """Add a batch's changes to the user's count for the current window (one write per user per
    batch); True when this batch took the count past the threshold: the first sign of a burst."""
    if changes <= 0 or not settings.runs_table:
        return False
    now = settings.now()
    window = int(now.timestamp()) // contract.BURST_WINDOW_SECONDS * contract.BURST_WINDOW_SECONDS
    response = dynamodb.update_item(
        TableName=settings.runs_table,
        Key={contract.RUNS_PARTITION_KEY: {"S": f"BURST#{user}"}, contract.RUNS_SORT_KEY: {"S": str(window)}},
        UpdateExpression="ADD changes :n SET expires_at = :expires",
        ExpressionAttributeValues={":n": {"N": str(changes)}, ":expires": {"N": str(window + 86400)}},
        ReturnValues="UPDATED_NEW")
    total = int(response["Attributes"]["changes"]["N"])
    return total >= settings.burst_changes > total - changes


def records_of(event: dict) -> list[Record]:
    """The SQS event Lambda gives the function, as records."""
    return [Record(message_id=r["messageId"], body=r.get("body", ""), receipt_handle=r.get("receiptHandle", ""),
                   receive_count=int((r.get("attributes") or {}).get("ApproximateReceiveCount") or 1))
            for r in (event or {}).get("Records", [])]


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}"
