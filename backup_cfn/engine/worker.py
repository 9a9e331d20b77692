"""Back up one user for one run: incremental, content-deduplicated, safe to retry at any point,
and split over as many invocations as the user's folder needs.

Steps (each a hook point for the crash tests): listed -> hashed -> leased (before the first content
claim, or with it on an incremental run's first delivery; at once on a redelivery or a continuation)
-> (claimed_content -> copied -> marked_stored per
new content) -> stored -> manifest_written -> recorded -> finalized. A retry after a crash at any
step reaches the same final state: the content index never lets two attempts copy the same
content, the manifest is written once, the counters move once.

A job that needs no content stored (an unchanged user on an incremental run) takes no lease: it
reads, writes its manifest if none is there, and records itself with one conditional write that
succeeds only while no other attempt holds or has finished the job.

When the invocation's time runs short (engine/attempts.py, Deadline), the attempt saves what it
covered as a part, sends a continuation message for the rest and records the hand-on; the last
chunk merges the chain's parts into the snapshot.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable

from botocore.exceptions import ClientError

from backup_cfn import contract
from backup_cfn.engine import attempts, naming, progress, reconcile, runs
from backup_cfn.engine.attempts import Deadline
from backup_cfn.engine.contentstore import Hook, no_hook
from backup_cfn.engine.errors import InvalidJob, ManifestError, RetryableJobError
from backup_cfn.engine.manifest import Manifest, list_manifests, read_manifest, write_manifest
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.snapshot import FOLDER_MARKER, ChunkReader

MESSAGE_VERSION = 1
MAX_PARTS = 100_000
MAX_KEY_LENGTH = 1024
DUPLICATE, HANDED_ON = "DUPLICATE", "HANDED_ON"


@dataclass(frozen=True)
class Job:
    run_id: str
    user: str
    previous_run_id: str | None = None
    part: int = 0                   # a continuation: which chunk of the job this message starts
    after: str | None = None        # a continuation: the last source key the chain covered
    carries_previous: bool = False  # the initiator names the previous run (older messages do not)
    last_of_shard: bool = False     # enqueued last of its run's shard: probably the job that empties it

    @classmethod
    def for_run(cls, run_id: str, user: str, previous_run_id: str | None, *, last_of_shard: bool = False) -> "Job":
        return cls(run_id, user, previous_run_id, carries_previous=True, last_of_shard=last_of_shard)

    def body(self) -> str:
        data: dict = {"version": MESSAGE_VERSION, "run_id": self.run_id, "user": self.user}
        if self.carries_previous:
            data["previous_run_id"] = self.previous_run_id
        if self.part:
            data.update(part=self.part, after=self.after)
        if self.last_of_shard:
            data["last_of_shard"] = True
        return json.dumps(data, separators=(",", ":"))

    def continuation(self, previous_run_id: str | None, after: str) -> "Job":
        return replace(self, part=self.part + 1, after=after, previous_run_id=previous_run_id, carries_previous=True)


def _short(value) -> str:
    """A field of a bad message as it goes into the reason and the logs: at most 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_job(body: str) -> Job:
    """The job in a queue message; InvalidJob (never retried to success) for anything else."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        raise InvalidJob(f"message body is not JSON: {str(body)[:80]!r}") from None
    if not isinstance(data, dict):
        raise InvalidJob("message body is not a JSON object")
    if data.get("version") != MESSAGE_VERSION:
        raise InvalidJob(f"unsupported job message version {_short(data.get('version'))}")
    if not naming.is_run_id(data.get("run_id")):
        raise InvalidJob(f"job has no valid run_id: {_short(data.get('run_id'))}")
    if not naming.is_valid_user(data.get("user")):
        raise InvalidJob(f"job has no valid user: {_short(data.get('user'))}")
    run_id, user = data["run_id"], data["user"]
    previous = data.get("previous_run_id")
    if previous is not None and not (naming.is_run_id(previous) and previous < run_id):
        raise InvalidJob(f"job has no valid previous_run_id: {_short(previous)}")
    part, after = data.get("part", 0), data.get("after")
    if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= MAX_PARTS:
        raise InvalidJob(f"job has no valid part: {_short(part)}")
    if part and not (isinstance(after, str) and after.startswith(f"{user}/") and len(after) <= MAX_KEY_LENGTH):
        raise InvalidJob(f"continuation has no valid 'after' key: {_short(after)}")
    if not isinstance(data.get("last_of_shard", False), bool):
        raise InvalidJob(f"job has no valid last_of_shard: {_short(data.get('last_of_shard'))}")
    return Job(run_id, user, previous, part, after if part else None, carries_previous="previous_run_id" in data,
               last_of_shard=data.get("last_of_shard", False))


@dataclass
class JobOutcome:
    job: Job
    status: str                       # COMPLETED, SKIPPED, FAILED, DUPLICATE, HANDED_ON
    stats: dict = field(default_factory=dict)
    reason: str = ""
    finalized_run: dict | None = None  # the run record, when this job closed the run


@dataclass(frozen=True)
class Delivery:
    """One job message as the queue delivered it to one invocation."""
    body: str
    receipt_handle: str = ""
    receive_count: int = 1
    remaining_ms: Callable[[], int] | None = None   # Lambda's context.get_remaining_time_in_millis


def handle_delivery(clients, settings: Settings, delivery: Delivery, *, hook: Hook = no_hook) -> JobOutcome:
    """A delivery as the worker function handles it: the message's visibility follows the attempt
    (its deadline plus the retry delay while it runs, the retry delay once it failed), then the job.
    Raises on failure so the message is reported failed (and retried, or dead-lettered)."""
    deadline = Deadline(delivery.remaining_ms, settings)
    if delivery.receipt_handle:
        attempts.change_visibility(clients.sqs, settings, delivery.receipt_handle, attempts.visibility_while_running(
            settings, delivery.receive_count, deadline.remaining_seconds()))
    try:
        return handle_message(clients, settings, delivery.body, receive_count=delivery.receive_count, hook=hook,
                              deadline=deadline)
    except Exception as exc:
        if delivery.receipt_handle:
            # A message that can never succeed goes on to the dead-letter queue without waiting.
            wait = 0 if isinstance(exc, InvalidJob) else attempts.visibility_after_failure(settings, delivery.receive_count)
            attempts.change_visibility(clients.sqs, settings, delivery.receipt_handle, wait)
        raise


def handle_message(clients, settings: Settings, body: str, *, receive_count: int = 1, hook: Hook = no_hook,
                   deadline: Deadline | None = None) -> JobOutcome:
    """One queue message. Raises on failure so the message is retried (and dead-lettered after
    the queue's maxReceiveCount); records the job FAILED on its last delivery."""
    job = parse_job(body)
    run = runs.require_run(clients.dynamodb, settings, job.run_id)
    attempt = _Attempt(clients, settings, job, run, receive_count, hook, deadline or Deadline.unlimited())
    try:
        return attempt.run()
    except InvalidJob:
        raise
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if attempts.is_last_delivery(settings, receive_count):
            outcome = attempt.record_failure(reason[:1000])
            if outcome is not None:
                exc.outcome = outcome  # the handler reports it in metrics, then lets the message go to the DLQ
        else:
            attempt.release(reason)
        raise


class _Superseded(Exception):
    """The job finished, or its chain moved past this message: a duplicate delivery."""


class _Attempt:
    def __init__(self, clients, settings: Settings, job: Job, run: dict, receive_count: int, hook: Hook,
                 deadline: Deadline):
        self.clients, self.settings, self.job, self.hook, self.deadline = clients, settings, job, hook, deadline
        self.receive_count = receive_count
        self.id = uuid.uuid4().hex
        self.lease: attempts.Lease | None = None
        self._lease_lock = threading.Lock()
        self.previous_run_id = job.previous_run_id if job.carries_previous else run.get("previous_run_id")
        self.first_part = job.part
        self.after = job.after
        self.chain_started = naming.iso_precise(settings.now())

    # --- the lease --------------------------------------------------------------------------

    def take_lease(self) -> None:
        """Hold the job from here on (idempotent, thread-safe). _Superseded when it is done."""
        with self._lease_lock:
            if self.lease is not None:
                return
            try:
                lease = attempts.acquire_lease(self.clients.dynamodb, self.settings, self.job.run_id, self.job.user,
                                               self.id, part=self.job.part)
            except attempts.ChainMovedOn as moved:
                self._resend_lost_continuation(moved)
                raise _Superseded() from None
            if lease is None:
                raise _Superseded()
            self.lease = lease
        self.hook("leased")

    def take_lease_with(self, item: dict) -> bool:
        """The lease and `item` (a fresh content claim) in one request, when the lease is not held
        yet; False, nothing written, when it is or either write refuses (the caller then takes the
        lease alone and claims as usual)."""
        with self._lease_lock:
            if self.lease is not None:
                return False
            lease = attempts.acquire_fresh_lease_with(self.clients.dynamodb, self.settings, self.job.run_id,
                                                      self.job.user, self.id, item)
            if lease is None:
                return False
            self.lease = lease
        self.hook("leased")
        return True

    def _resend_lost_continuation(self, moved: "attempts.ChainMovedOn") -> None:
        """This message's attempt recorded its hand-on and may have died before sending the
        continuation: send it (again). A second copy is harmless: the chain's guard lets one on."""
        if moved.next_part == self.job.part + 1 and moved.resume_after:
            self._send(self.job.continuation(self.previous_run_id, moved.resume_after))

    def release(self, reason: str) -> None:
        if self.lease is not None:
            attempts.release_lease(self.clients.dynamodb, self.settings, self.job.run_id, self.job.user, self.lease,
                                   reason)
        else:
            attempts.note_error(self.clients.dynamodb, self.settings, self.job.run_id, self.job.user, reason)

    def record_failure(self, reason: str) -> JobOutcome | None:
        try:
            closed = runs.finish_job(self.clients.dynamodb, self.settings, self.job.run_id, self.job.user, self.lease,
                                     runs.FAILED, {}, reason, part=self.job.part,
                                     probably_last=self.job.last_of_shard)
        except runs.JobNotRecorded:
            return None   # another attempt holds or finished the job: it records the outcome
        self._announce(closed)
        return JobOutcome(self.job, runs.FAILED, reason=reason, finalized_run=closed)

    # --- the job ----------------------------------------------------------------------------

    def run(self) -> JobOutcome:
        job = self.job
        try:
            if job.part > 0 or self.receive_count > 1:
                # A continuation, or a redelivery (its attempt failed or died): hold the job first.
                self.take_lease()
                self._continue_chain()
                if self.lease.previous_status is not None:
                    written = self._manifest_if_any(naming.manifest_key(job.user, job.run_id))
                    if written is not None:
                        # An earlier attempt wrote the manifest and died before recording it.
                        return self._record(*_status_of(written), written.stats)
            return self._back_up()
        except _Superseded:
            return self._duplicate()

    def _continue_chain(self) -> None:
        if self.job.part == 0:
            return
        started = self.lease.chain_started
        age = (self.settings.now() - naming.parse_iso(started)).total_seconds() if started else 0
        if started and age <= self.settings.job_max_seconds - self.settings.stale_after_seconds:
            self.first_part, self.chain_started = self.lease.first_part, started
        else:
            # Content the earlier parts name may have been collected since: start the listing again.
            self.first_part, self.after = self.job.part, None

    def _back_up(self) -> JobOutcome:
        job = self.job
        previous = self._previous_manifest()
        # The previous snapshot with the journal's changes since: what continuous protection says the
        # user's files are, so content already captured is not read again, and what the listing is
        # reconciled with (engine/reconcile.py).
        expected = reconcile.expected_view(self.clients.s3, self.settings.backup_bucket, job.user, previous,
                                           self.settings.now())
        # An incremental run's first delivery: its first new content is claimed with the lease, in one request.
        fresh = previous is not None and job.part == 0 and self.receive_count == 1
        reader = ChunkReader(self.clients, self.settings, user=job.user, owner=naming.job_id(job.run_id, job.user),
                             previous=expected or previous, deadline=self.deadline, lease=self.take_lease,
                             hook=self.hook, lease_with=self.take_lease_with if fresh else None)
        chunk = reader.read(self.after)
        if not chunk.complete:
            return self._hand_on(chunk)
        self.hook("stored")
        parts = progress.read_parts(self.clients.s3, self.settings, job.user, job.run_id, self.first_part,
                                    job.part - 1) if job.part > self.first_part else []
        entries, skipped, figures = progress.merge(parts, chunk)
        if not entries and previous is None and self.first_part == 0 and set(skipped.values()) <= {FOLDER_MARKER}:
            reason = f"no objects under '{job.user}/' in the source bucket (unknown user)"
            return self._record(runs.SKIPPED, reason, {})
        scanned = sum(e.size for e in entries.values())
        changes, missed = reconcile.missed_changes(expected, entries, skipped, previous=previous,
                                                   job_started=naming.parse_iso(self.chain_started))
        stats = {"files_total": len(entries), "files_changed": figures["files_changed"], "bytes_scanned": scanned,
                 "bytes_read": figures["bytes_read"], "bytes_new": figures["bytes_new"],
                 "bytes_deduplicated": scanned - figures["bytes_new"], "objects_skipped": len(skipped),
                 "changes_missed": missed}
        reconcile.record(self.clients.s3, self.settings.backup_bucket, job.user, changes, self.settings.now(),
                         self.settings.sse())
        manifest = Manifest(user=job.user, run_id=job.run_id, created_at=naming.iso(self.settings.now()),
                            entries=entries, skipped=skipped, stats=stats)
        written = self._write_manifest_once(manifest)
        self.hook("manifest_written")
        return self._record(*_status_of(written), written.stats)

    def _write_manifest_once(self, manifest: Manifest) -> Manifest:
        """Write the snapshot unless one of this run is there already (an attempt that died before
        recording, or a duplicate delivery at the same time): the first one written stays."""
        try:
            write_manifest(self.clients.s3, self.settings.backup_bucket, manifest, self.settings.sse(), if_absent=True)
            return manifest
        except ClientError as exc:
            if _error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
        written = self._manifest_if_any(naming.manifest_key(manifest.user, manifest.run_id))
        if written is None:
            raise RetryableJobError(f"manifest of {manifest.user} for run {manifest.run_id} is being written by "
                                    "another attempt; retrying")
        return written

    def _hand_on(self, chunk) -> JobOutcome:
        job = self.job
        if chunk.covered == 0:
            raise RetryableJobError(f"no progress within one invocation ({self.deadline.budget:.0f} s) after "
                                    f"{self.after or 'the start of the listing'}")
        self.take_lease()
        chunk = progress.write_part(self.clients.s3, self.settings, job.user, job.run_id, job.part, chunk)
        attempts.record_hand_on(self.clients.dynamodb, self.settings, job.run_id, job.user, self.lease,
                                next_part=job.part + 1, first_part=self.first_part, chain_started=self.chain_started,
                                after=chunk.last_key)
        # Recorded first, sent second: a redelivery of this message sends it again if need be.
        self._send(job.continuation(self.previous_run_id, chunk.last_key))
        return JobOutcome(job, HANDED_ON, stats={"objects": chunk.covered, "part": job.part})

    def _send(self, continuation: Job) -> None:
        self.clients.sqs.send_message(QueueUrl=self.settings.job_queue_url, MessageBody=continuation.body())

    def _record(self, status: str, reason: str, stats: dict) -> JobOutcome:
        try:
            closed = runs.finish_job(self.clients.dynamodb, self.settings, self.job.run_id, self.job.user, self.lease,
                                     status, stats, reason, part=self.job.part,
                                     probably_last=self.job.last_of_shard)
        except runs.JobNotRecorded as exc:
            if exc.state == "done":
                return self._duplicate()
            raise
        self.hook("recorded")
        self._announce(closed)
        self.hook("finalized")
        return JobOutcome(self.job, status, stats=stats, reason=reason, finalized_run=closed)

    def _duplicate(self) -> JobOutcome:
        """This job finished before (or its chain moved on): an earlier attempt may have died
        between recording it and closing the run, so the close check runs again (it closes only
        a run with nothing pending, and only once)."""
        closed = runs.close_run(self.clients.dynamodb, self.settings, self.job.run_id)
        self._announce(closed)
        return JobOutcome(self.job, DUPLICATE, finalized_run=closed)

    def _announce(self, closed: dict | None) -> None:
        if closed is not None:
            runs.publish_summary(self.clients.sns, self.settings, closed)

    # --- snapshots --------------------------------------------------------------------------

    def _manifest_if_any(self, key: str) -> Manifest | None:
        try:
            return read_manifest(self.clients.s3, self.settings.backup_bucket, key)
        except ManifestError:
            return None   # unreadable: as if absent (an unreadable one of this run is written again)
        except ClientError as exc:
            if _error_code(exc) in contract.MISSING_OBJECT_CODES:
                return None
            raise

    def _previous_manifest(self) -> Manifest | None:
        """The user's newest snapshot before this run, used only to skip reading unchanged objects.
        Read by key from the run before; listed only when the user has none there (new, skipped or
        failed then). Without any earlier run there is nothing to look for."""
        if not self.previous_run_id:
            return None
        found = self._manifest_if_any(naming.manifest_key(self.job.user, self.previous_run_id))
        if found is not None:
            return found
        earlier = [key for _, run_id, key in list_manifests(self.clients.s3, self.settings.backup_bucket, self.job.user)
                   if run_id < self.job.run_id]
        for key in reversed(earlier):
            found = self._manifest_if_any(key)
            if found is not None:
                return found
        return None


def _status_of(manifest: Manifest) -> tuple[str, str]:
    """A snapshot's job status: FAILED when an object in it could not be hashed (named), else COMPLETED."""
    too_large = progress.unhashable(manifest.skipped)
    if not too_large:
        return runs.COMPLETED, ""
    more = f" and {len(too_large) - 1} more" if len(too_large) > 1 else ""
    return runs.FAILED, f"{too_large[0]}{more}: {manifest.skipped[too_large[0]]}; every other file is in the snapshot"


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
