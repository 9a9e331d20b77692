"""S3's events to EventBridge in the emulator, as AWS sends them (listed in docs/emulator.md).

moto 5.2.5 delivers S3 -> EventBridge -> SQS, but not as AWS does, in ways the capture path depends
on (S3 User Guide, "EventBridge event message structure",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html):

- a delete in a versioned bucket (a delete marker), by DeleteObject or DeleteObjects, sends nothing;
  deleting one version sends nothing unless it was the key's last;
- every event has the same `id` and the same `sequencer` ("617f08299329d189"); AWS gives each event
  a UUID, and a sequencer that grows with each change of a key;
- the ETag is named `eTag` (AWS: `etag`), `reason` is "ObjectCreated" (AWS: PutObject, POST Object,
  CopyObject, CompleteMultipartUpload; DeleteObject), a deleted object has no `deletion-type`
  ("Permanently Deleted" or "Delete Marker Created") and carries a size and ETag it cannot have;
  `version-id` is "null" in an unversioned bucket (AWS leaves it out);
- the event goes to the rules of every event bus, disabled rules included (AWS: the account's
  default bus, enabled rules);
- a bucket made by CloudFormation ignores `NotificationConfiguration`, so the stack's source bucket
  never sends an event (AWS: `EventBridgeConfiguration.EventBridgeEnabled` turns them on);
- GetBucketNotificationConfiguration never shows `EventBridgeConfiguration`, so a deploy cannot see
  whether an existing bucket's events are on (AWS: an empty `EventBridgeConfiguration` element).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

_sequence_lock = threading.Lock()
_last_sequence = [0]
_suppressed = threading.local()

CREATED_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}
PERMANENTLY_DELETED, DELETE_MARKER_CREATED = "Permanently Deleted", "Delete Marker Created"


def next_sequencer() -> str:
    """16 hex digits that grow with every event the emulator sends (so with each change of a key,
    which is all AWS promises: sequencers order the events of one key)."""
    with _sequence_lock:
        _last_sequence[0] = max(_last_sequence[0] + 1, time.time_ns())
        return f"{_last_sequence[0]:016x}"


def event_detail(bucket_name: str, key_name: str, *, reason: str, version_id: str | None, size: int | None = None,
                 etag: str | None = None, deletion_type: str | None = None, account_id: str = "123456789012") -> dict:
    """The `detail` of an Object Created (size and etag given) or Object Deleted event."""
    obj: dict = {"key": key_name}
    if deletion_type is None:
        obj.update(size=size, etag=etag)
    if version_id and version_id != "null":
        obj["version-id"] = version_id
    obj["sequencer"] = next_sequencer()
    detail = {"version": "0", "bucket": {"name": bucket_name}, "object": obj,
              "request-id": uuid.uuid4().hex[:16].upper(), "requester": account_id,
              "source-ip-address": "127.0.0.1", "reason": reason}
    if deletion_type is not None:
        detail["deletion-type"] = deletion_type
    return detail


def patch_eventbridge_events() -> None:
    """S3 events to EventBridge in AWS's shape, on the default bus only, for every create and every
    delete (delete markers and version deletes included). Idempotent."""
    from moto.events.models import events_backends
    from moto.events.utils import _BASE_EVENT_MESSAGE
    from moto.core.utils import unix_time
    from moto.s3 import models, notifications

    if getattr(notifications, "_backup_cfn_events", False):
        return
    original_send = notifications._send_event_bridge_message

    def send(account_id: str, bucket, event_name: str, key) -> None:
        if getattr(_suppressed, "on", False):
            return
        if event_name in CREATED_REASONS:
            detail = event_detail(bucket.name, key.name, reason=CREATED_REASONS[event_name],
                                  version_id=getattr(key, "version_id", None), size=key.size,
                                  etag=key.etag.replace('"', ""), account_id=account_id)
            detail_type = "Object Created"
        elif event_name in (notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_EVENT,
                            notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT):
            marker = event_name == notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT
            detail = event_detail(bucket.name, key.name, reason="DeleteObject",
                                  version_id=getattr(key, "version_id", None), account_id=account_id,
                                  deletion_type=DELETE_MARKER_CREATED if marker else PERMANENTLY_DELETED)
            detail_type = "Object Deleted"
        else:
            original_send(account_id, bucket, event_name, key)
            return
        event = {**_BASE_EVENT_MESSAGE, "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.s3",
                 "account": account_id,
                 # A number: moto's SQS target turns it into AWS's "2021-11-12T00:00:00Z".
                 "time": unix_time(), "region": bucket.region_name, "resources": [bucket.arn], "detail": detail}
        try:
            bus = events_backends[account_id][bucket.region_name].event_buses["default"]
        except KeyError:
            return
        for rule in list(bus.rules.values()):
            # A schedule rule matches no event (a rule has a pattern or a schedule); delivery is
            # asynchronous on AWS, so a target moto cannot reach never fails the S3 request.
            if rule.state != "ENABLED" or rule.scheduled_expression:
                continue
            try:
                rule.send_to_targets(dict(event), transform_input=False)
            except Exception:  # noqa: BLE001 - as moto's own sender: the change itself succeeded
                logging.getLogger(__name__).warning("S3 event for %s not delivered by rule %s", key.name, rule.name,
                                                    exc_info=True)

    notifications._send_event_bridge_message = send
    _patch_deletes(models, notifications)
    _patch_cloudformation_notifications(models)
    _patch_notification_read()
    notifications._backup_cfn_events = True


def _patch_deletes(models, notifications) -> None:
    """moto's own delete events are held back (they miss delete markers and version deletes) and
    the right one is sent after each delete that removed something."""
    backend_class = models.S3Backend
    original = backend_class.delete_object
    events = notifications.S3NotificationEvent

    def delete_object(self, bucket_name, key_name, version_id=None, bypass=False):
        bucket = self.get_bucket(bucket_name)
        versions = list(bucket.keys.getlist(key_name, [])) if hasattr(bucket, "keys") else []
        _suppressed.on = True
        try:
            deleted, meta = original(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        finally:
            _suppressed.on = False
        if not deleted or bucket.notification_configuration is None:
            return deleted, meta
        if bucket.is_versioned and version_id is None:
            marker = bucket.keys.get(key_name)
            notifications.send_event(self.account_id, events.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT, bucket, marker)
        elif bucket.is_versioned:
            gone = next((v for v in versions if str(v.version_id) == str(version_id)), None)
            if gone is not None:
                notifications.send_event(self.account_id, events.OBJECT_REMOVED_DELETE_EVENT, bucket, gone)
        elif versions:
            notifications.send_event(self.account_id, events.OBJECT_REMOVED_DELETE_EVENT, bucket, versions[-1])
        return deleted, meta

    backend_class.delete_object = delete_object


def _patch_cloudformation_notifications(models) -> None:
    """AWS::S3::Bucket's NotificationConfiguration.EventBridgeConfiguration, on create and update."""
    bucket_class = models.FakeBucket
    original_create = bucket_class.create_from_cloudformation_json.__func__
    original_update = bucket_class.update_from_cloudformation_json.__func__

    def apply(bucket, cloudformation_json) -> None:
        config = (cloudformation_json.get("Properties") or {}).get("NotificationConfiguration") or {}
        enabled = str((config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled", "")).lower() == "true"
        current = bucket.notification_configuration
        if enabled and (current is None or current.event_bridge is None):
            bucket.set_notification_configuration({"EventBridgeConfiguration": {}})
        elif not enabled and current is not None and current.event_bridge is not None:
            current.event_bridge = None

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        apply(bucket, cloudformation_json)
        return bucket

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        bucket = original_update(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                 region_name)
        apply(bucket, cloudformation_json)
        return bucket

    bucket_class.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    bucket_class.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)


def _patch_notification_read() -> None:
    """GetBucketNotificationConfiguration answers with the EventBridgeConfiguration it holds."""
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(self):
        status, headers, body = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None or "<EventBridgeConfiguration" in str(body):
            return status, headers, body
        text = body.decode() if isinstance(body, bytes) else str(body)
        element = "<EventBridgeConfiguration></EventBridgeConfiguration>"
        if "</NotificationConfiguration>" in text:
            text = text.replace("</NotificationConfiguration>", element + "</NotificationConfiguration>")
        else:   # moto's empty answer: no configuration element at all
            text = ('<?xml version="1.0" encoding="UTF-8"?><NotificationConfiguration '
                    'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + element + "</NotificationConfiguration>")
        headers = {k: v for k, v in dict(headers).items() if k.lower() != "content-length"}
        return status, headers, text.encode() if isinstance(body, bytes) else text

    S3Response.get_bucket_notification = get_bucket_notification
