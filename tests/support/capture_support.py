"""Helpers for the continuous-protection tests: S3's EventBridge events in AWS's documented shape
(tests/events/s3_object_*.json, from the S3 User Guide's examples), as records of the capture queue,
and the capture queue drained through the real handler."""
from __future__ import annotations

import copy
import itertools
import uuid
from datetime import datetime

from backup_cfn.engine import naming
from backup_cfn.engine.capture import Record
from backup_cfn.local.capture_source import drain

from engine_support import WORKER, load_event

_sequence = itertools.count(1)
CAPTURE = "CaptureFunctionRole"


def s3_event(bucket: str, key: str, moment: datetime, *, deleted: bool = False, version_id: str | None = None,
             size: int = 0, etag: str = "", deletion_type: str = "Delete Marker Created",
             sequencer: str | None = None) -> dict:
    """An Object Created (or Deleted) event as S3 puts it on EventBridge."""
    event = copy.deepcopy(load_event("s3_object_deleted.json" if deleted else "s3_object_created.json"))
    event.update(id=str(uuid.uuid4()), time=naming.iso(moment), resources=[f"arn:aws:s3:::{bucket}"])
    event["detail"]["bucket"]["name"] = bucket
    obj = {"key": key, "sequencer": sequencer or f"{next(_sequence):016x}"}
    if not deleted:
        obj.update(size=size, etag=etag.strip('"'))
    if version_id:
        obj["version-id"] = version_id
    event["detail"]["object"] = obj
    if deleted:
        event["detail"]["deletion-type"] = deletion_type
    else:
        event["detail"].pop("deletion-type", None)
    return event


def record(event, message_id: str | None = None, receive_count: int = 1) -> Record:
    import json
    body = event if isinstance(event, str) else json.dumps(event)
    return Record(message_id=message_id or uuid.uuid4().hex, body=body, receive_count=receive_count)


def put_event(engine, user: str, path: str, data: bytes, moment: datetime) -> dict:
    """Write a file to the source and return the event S3 would send for it, at `moment`."""
    key = f"{user}/{path}"
    response = engine.s3.put_object(Bucket=engine.settings.source_bucket, Key=key, Body=data)
    return s3_event(engine.settings.source_bucket, key, moment, version_id=response.get("VersionId"),
                    size=len(data), etag=response["ETag"])


def delete_event(engine, user: str, path: str, moment: datetime) -> dict:
    key = f"{user}/{path}"
    response = engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key=key)
    return s3_event(engine.settings.source_bucket, key, moment, deleted=True, version_id=response.get("VersionId"))


def capture_queue(engine, role: str = CAPTURE, **options):
    """Everything on the capture queue captured now, through the real handler, as `role`."""
    return drain(engine.as_role(role), engine.settings, **options)


def files_at(history, user: str, minute: int) -> dict[str, bytes]:
    """The point-in-time properties' model: a user's files after every change up to and including
    `minute`, from a history of (minute, user, path, content or None for a delete)."""
    files: dict[str, bytes] = {}
    for when, who, path, data in history:
        if who != user or when > minute:
            continue
        if data is None:
            files.pop(path, None)
        else:
            files[path] = data
    return files


__all__ = ["CAPTURE", "WORKER", "capture_queue", "delete_event", "files_at", "put_event", "record", "s3_event"]
