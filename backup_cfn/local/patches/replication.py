"""S3 replication in the emulator (listed in docs/emulator.md): moto 5.2.5 stores a bucket's
replication configuration and copies nothing. Here, as on AWS ("Replicating objects within and
across Regions", replication.html), every object version written to a bucket with a replication
configuration is copied asynchronously, by a thread of the server process, to the destination
bucket of each rule that applies (replication_rules), in the same or another account and Region.

What is copied and how follows "What does Amazon S3 replicate?"
(replication-what-is-isnot-replicated.html) and the pages it links; replica.py builds each replica.
Nothing else changes: a request that writes an object answers as before, then its versions are
marked PENDING and queued (the hooks below collect them while the request runs, since a PutObject
sets the tags a rule may filter on after the object itself).

Tests and the demo wait for replication through `GET /moto-api/backup-cfn/replication?wait=S`
(backup_cfn.local.server.wait_for_replication), and may pause it to see PENDING.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections import deque

from backup_cfn.local.patches import replica, replication_rules as rules

ENDPOINT = "/moto-api/backup-cfn/replication"
_RULES = "_backup_cfn_replication_rules"  # a bucket's parsed rules, kept beside moto's stored configuration

_request = threading.local()  # the replication-relevant changes of the S3 request this thread serves


def patch_replication_configuration() -> None:
    """PutBucketReplication is refused, as AWS refuses it, when a destination bucket is not versioned
    (moto 5.2.5 checks only the source bucket); GetBucketReplication answers the rules as they were
    put (moto 5.2.5 answers every rule with an empty prefix filter and DeleteMarkerReplication
    Disabled, whatever was put). Idempotent."""
    from moto.s3 import models, responses
    from moto.s3.exceptions import VersioningNotEnabledForReplication

    backend_class = models.S3Backend
    if getattr(backend_class, "_backup_cfn_replication_configuration", False):
        return
    put, delete = backend_class.put_bucket_replication, backend_class.delete_bucket_replication

    def put_bucket_replication(self, bucket_name, replication):
        if not self.get_bucket(bucket_name).is_versioned:  # moto checks it in the S3 API's path only
            raise VersioningNotEnabledForReplication(bucket_name=bucket_name)
        parsed = rules.parse(replication)
        for rule in parsed:
            destination = replica.find_bucket(rule.destination.bucket)
            if destination is not None and not destination.is_versioned:
                raise replica.InvalidRequest("Destination bucket must have versioning enabled.")
        put(self, bucket_name, replication)
        setattr(self.get_bucket(bucket_name), _RULES, parsed)

    def delete_bucket_replication(self, bucket_name):
        delete(self, bucket_name)
        setattr(self.get_bucket(bucket_name), _RULES, ())

    def get_bucket_replication(self):
        from moto.core.responses import ActionResult
        from moto.s3.exceptions import ReplicationConfigurationNotFoundError

        self.data["Action"] = "GetBucketReplication"
        stored = self.backend.get_bucket_replication(self.bucket_name)
        if not stored:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        return self.serialized(ActionResult({"ReplicationConfiguration": rules.to_api(stored)}))

    backend_class.put_bucket_replication = put_bucket_replication
    backend_class.delete_bucket_replication = delete_bucket_replication
    responses.S3Response.get_bucket_replication = get_bucket_replication
    backend_class._backup_cfn_replication_configuration = True


def patch_replication() -> None:
    """Objects written to a bucket with a replication configuration are replicated: a new version
    (PutObject, CopyObject, CompleteMultipartUpload) to each destination its rules choose, a delete
    marker where DeleteMarkerReplication says so, and later changes of its tags, ACL, retention or
    legal hold to the replicas already made; a replica's own changes go back only under
    ReplicaModifications. HeadObject and GetObject show x-amz-replication-status (PENDING,
    COMPLETED, FAILED on a source version; REPLICA on a replica). `POST /moto-api/reset` also
    empties the replication queue. Idempotent."""
    from moto.s3 import models, responses

    backend_class = models.S3Backend
    if getattr(backend_class, "_backup_cfn_replication", False):
        return
    _collect_changes(backend_class)
    for name in ("key_response", "bucket_response"):
        setattr(responses.S3Response, name, _in_request(getattr(responses.S3Response, name)))
    _show_status(models.FakeKey)
    _serve_endpoint()
    _empty_on_reset()
    backend_class._backup_cfn_replication = True


# --- collecting what a request changed -------------------------------------------------------------

NEW, DELETE_MARKER, METADATA = "new", "delete-marker", "metadata"


def _collecting() -> bool:
    return getattr(_request, "changes", None) is not None


def _record(kind: str, bucket, obj) -> None:
    if obj is not None and getattr(bucket, _RULES, None):
        _request.changes.append((kind, bucket, obj))


def _collect_changes(backend_class) -> None:
    put_object, set_delete_marker = backend_class.put_object, backend_class._set_delete_marker
    put_tagging, delete_tagging = backend_class.put_object_tagging, backend_class.delete_object_tagging
    put_acl = backend_class.put_object_acl
    put_retention, put_legal_hold = backend_class.put_object_retention, backend_class.put_object_legal_hold

    def put_object_hook(self, bucket_name, key_name, *args, **kwargs):
        key = put_object(self, bucket_name, key_name, *args, **kwargs)
        if _collecting():
            _record(NEW, self.get_bucket(bucket_name), key)
        return key

    def set_delete_marker_hook(self, bucket_name, key_name):
        marker = set_delete_marker(self, bucket_name, key_name)
        if _collecting():
            _record(DELETE_MARKER, self.get_bucket(bucket_name), marker)
        return marker

    def put_object_tagging_hook(self, key, tags):
        result = put_tagging(self, key, tags)
        if _collecting():
            _record(METADATA, self.get_bucket(key.bucket_name), key)
        return result

    def changes_a_version(original, versioned: bool = True):
        """A hook for a backend method called (bucket_name, key_name[, version_id], ...), positionally
        or by keyword as moto's responses call them; unversioned: it changes the latest version."""
        def hook(self, bucket_name, key_name, *args, **kwargs):
            result = original(self, bucket_name, key_name, *args, **kwargs)
            if _collecting():
                version_id = kwargs.get("version_id", args[0] if args else None) if versioned else None
                _record(METADATA, self.get_bucket(bucket_name), self.get_object(bucket_name, key_name, version_id))
            return result
        return hook

    backend_class.put_object = put_object_hook
    backend_class._set_delete_marker = set_delete_marker_hook
    backend_class.put_object_tagging = put_object_tagging_hook
    backend_class.put_object_acl = changes_a_version(put_acl, versioned=False)
    for name, original in (("delete_object_tagging", delete_tagging), ("put_object_retention", put_retention),
                           ("put_object_legal_hold", put_legal_hold)):
        setattr(backend_class, name, changes_a_version(original))


def _in_request(handler):
    """`handler` (an S3 request's entry point) collecting the changes it makes, and queueing their
    replication once it has made them all, before its answer is sent."""
    def in_request(self, *args, **kwargs):
        if _collecting():  # ambiguous_response calls one of the two
            return handler(self, *args, **kwargs)
        _request.changes = []
        try:
            return handler(self, *args, **kwargs)
        finally:
            changes, _request.changes = _request.changes, None
            if changes:
                _queue(changes)
    return in_request


def _queue(changes: list) -> None:
    created = {id(obj) for kind, _, obj in changes if kind == NEW}
    seen: set[int] = set()
    for kind, bucket, obj in changes:
        if id(obj) in seen or (kind == METADATA and id(obj) in created):
            continue  # the tags and ACL a request gives the version it creates go with that version
        seen.add(id(obj))
        action, chosen = _job(kind, getattr(bucket, _RULES), obj)
        if chosen:
            if kind != DELETE_MARKER:
                replica.set_status(obj, replica.PENDING)
            REPLICATOR.submit(action, bucket, obj, chosen)


def _job(kind: str, bucket_rules: tuple, obj) -> tuple:
    """What to run for one change, and the rules it runs under (none: nothing to replicate)."""
    if kind == DELETE_MARKER:
        return replica.copy_delete_marker, rules.for_delete_marker(bucket_rules, obj.name)
    if kind == NEW:
        return replica.copy_version, rules.for_object(bucket_rules, obj.name, *replica.selection_facts(obj, bucket_rules))
    status = replica.status(obj)
    if status == replica.REPLICA:
        return replica.sync_replica_modification, rules.for_replica_modification(
            bucket_rules, obj.name, *replica.selection_facts(obj, bucket_rules))
    if status in (replica.PENDING, replica.COMPLETED):  # a FAILED version has no replicas to follow it
        return replica.sync_metadata, rules.for_object(bucket_rules, obj.name, *replica.selection_facts(obj, bucket_rules))
    return None, []


# --- the replicator: one thread, first in first out -----------------------------------------------

class Replicator:
    """Runs each queued replication in order on one daemon thread, and keeps the figures the
    endpoint reports: what is pending, what completed or failed, and how long each waited."""

    FAILURES_KEPT = 20

    def __init__(self) -> None:
        self._jobs: deque = deque()
        self._changed = threading.Condition()
        self._running = 0  # jobs taken off the queue and not finished
        self._in_job = threading.Lock()  # held while a job writes: a reset waits for it
        self._generation = 0  # one more at each reset: a job from before one is not counted after
        self._paused = False
        self._thread: threading.Thread | None = None
        self._figures = self._new_figures()

    @staticmethod
    def _new_figures() -> dict:
        return {"completed": 0, "failed": 0, "lag_seconds_total": 0.0, "lag_seconds_max": 0.0, "failures": []}

    def submit(self, action, bucket, obj, chosen) -> None:
        with self._changed:
            self._jobs.append((action, bucket, obj, chosen, time.monotonic(), self._generation))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="s3-replication", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._paused or not self._jobs:
                    self._changed.wait()
                job = self._jobs.popleft()
                self._running += 1
            action, bucket, obj, chosen, queued, generation = job
            with self._in_job:
                try:
                    failures = action(bucket, obj, chosen)
                except Exception as error:  # a job must never stop the thread
                    failures = [f"{type(error).__name__}: {error}"]
            with self._changed:
                self._running -= 1
                if generation == self._generation:
                    self._count(obj, failures, time.monotonic() - queued)
                self._changed.notify_all()

    def _count(self, obj, failures: list[str], lag: float) -> None:
        figures = self._figures
        figures["failed" if failures else "completed"] += 1
        figures["lag_seconds_total"] += lag
        figures["lag_seconds_max"] = max(figures["lag_seconds_max"], lag)
        for failure in failures:
            figures["failures"] = (figures["failures"] + [f"{getattr(obj, 'name', '?')}: {failure}"])[-self.FAILURES_KEPT:]

    def pause(self, paused: bool) -> None:
        with self._changed:
            self._paused = paused
            self._changed.notify_all()

    def wait(self, seconds: float) -> None:
        """Until nothing is pending (or `seconds` pass, or replication is paused)."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while (self._jobs or self._running) and not self._paused:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(left)

    def state(self) -> dict:
        with self._changed:
            figures = dict(self._figures)
            done = figures["completed"] + figures["failed"]
            figures["lag_seconds_mean"] = figures["lag_seconds_total"] / done if done else 0.0
            return {"pending": len(self._jobs) + self._running, "paused": self._paused, **figures}

    def reset(self) -> None:
        """Forget every queued job, and wait for the one running, so that nothing made before a
        reset lands in what is made after it."""
        with self._changed:
            self._jobs.clear()
            self._generation += 1
            self._paused = False
            self._figures = self._new_figures()
            self._changed.notify_all()
        with self._in_job:
            pass


REPLICATOR = Replicator()


def _show_status(key_class) -> None:
    original = key_class.response_dict.fget

    def response_dict(self):
        headers = original(self)
        status = replica.status(self)
        if status:
            headers["x-amz-replication-status"] = status
        return headers

    key_class.response_dict = property(response_dict)


def _serve_endpoint() -> None:
    """`GET ENDPOINT[?wait=S]`: the replicator's figures, after waiting up to S seconds for it to
    catch up; `POST ENDPOINT?paused=true|false`: pause or resume it."""
    from moto.moto_api._internal import urls

    def replication(request, full_url, headers):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(full_url).query)
        if request.method == "POST" and "paused" in query:
            REPLICATOR.pause(query["paused"][0].lower() == "true")
        elif request.method == "GET" and "wait" in query:
            REPLICATOR.wait(float(query["wait"][0]))
        return 200, {"Content-Type": "application/json"}, json.dumps(REPLICATOR.state())

    urls.url_paths["{0}" + ENDPOINT] = replication


def _empty_on_reset() -> None:
    from moto.moto_api._internal.models import MotoAPIBackend

    original = MotoAPIBackend.reset

    def reset(self):
        REPLICATOR.reset()
        original(self)

    MotoAPIBackend.reset = reset
