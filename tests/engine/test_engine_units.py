"""Pure functions of the engine, with fakes where a client is needed (no emulator)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from datetime import datetime, timezone

import pytest

from backup_cfn import contract
from backup_cfn.engine import naming
from backup_cfn.engine.errors import EnqueueFailed, InvalidJob, ManifestError, MissingSetting
from backup_cfn.engine.hashing import sha256_of_stream, whole_object_sha256
from backup_cfn.engine.initiator import enqueue_jobs, handle_schedule_event, order_users
from backup_cfn.engine.manifest import Entry, Manifest, decode
from backup_cfn.engine.pruner import split_by_retention
from backup_cfn.engine.retention import RetentionPolicy
from backup_cfn.engine.restore import safe_relative
from backup_cfn.engine.settings import Settings, settings_from_environ
from backup_cfn.engine.worker import Job, JobOutcome, parse_job

from engine_support import load_event

H = hashlib.sha256(b"x").hexdigest()


def test_content_key_spreads_over_two_hex_levels_and_round_trips():
    key = naming.content_key(H)
    assert key == f"content/{H[:2]}/{H[2:4]}/{H}"
    assert naming.hash_of_content_key(key) == H
    assert naming.hash_of_content_key(f"content/00/00/{H}") is None  # wrong prefix for this hash


def test_content_key_rejects_anything_but_a_sha256():
    with pytest.raises(ValueError):
        naming.content_key("../../etc/passwd")


def test_manifest_keys_parse_back_and_ignore_strangers():
    key = naming.manifest_key("client-0001", "20261125T020000Z")
    assert key == "manifests/client-0001/20261125T020000Z.json.gz"
    assert naming.parse_manifest_key(key) == ("client-0001", "20261125T020000Z")
    assert naming.parse_manifest_key("manifests/client-0001/notes.txt") is None
    assert naming.parse_manifest_key("manifests/a/b/20261125T020000Z.json.gz") is None


def test_run_id_comes_from_the_schedule_time_so_a_retry_gets_the_same_id():
    event = load_event("scheduled_event.json")
    assert naming.run_id_from_event_time(event["time"]) == "20261125T020000Z"
    assert naming.run_id_for(datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)) == "20261125T030000Z"
    assert naming.run_time("20261125T020000Z") == datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("user,ok", [("client-0001", True), ("a b", True), ("", False), ("a/b", False),
                                     ("..", False), ("x" * 513, False), ("tab\tname", False)])
def test_user_names(user, ok):
    assert naming.is_valid_user(user) is ok


def test_manifest_round_trip_is_byte_stable():
    manifest = Manifest("u", "20261125T020000Z", "2026-11-25T02:00:05Z",
                        {"b.pdf": Entry(H, 1, '"e"', "2026-11-24T00:00:00Z", "v1"),
                         "a.xlsx": Entry(H, 1, '"e"', "2026-11-24T00:00:00Z")},
                        skipped={"gone.pdf": "vanished"}, stats={"files_total": 2})
    data = manifest.encode()
    assert data == manifest.encode()
    again = decode(data)
    assert again == manifest
    assert again.hashes() == {H}


@pytest.mark.parametrize("data", [b"not gzip", __import__("gzip").compress(b'{"format": 99}'),
                                  __import__("gzip").compress(b'{"format": 1, "entries": {"a": {"sha256": "zz"}}}')])
def test_corrupt_manifests_raise_manifest_error(data):
    with pytest.raises(ManifestError):
        decode(data)


def test_whole_object_checksum_is_used_but_multipart_composites_are_not():
    digest = hashlib.sha256(b"hello").digest()
    b64 = base64.b64encode(digest).decode()
    assert whole_object_sha256({"ChecksumSHA256": b64}) == digest.hex()
    assert whole_object_sha256({"ChecksumSHA256": b64 + "-3"}) is None
    assert whole_object_sha256({"ChecksumSHA256": b64, "ChecksumType": "COMPOSITE"}) is None
    assert whole_object_sha256({}) is None


def test_streamed_hash_matches_hashlib_in_small_chunks():
    data = bytes(range(256)) * 1000
    assert sha256_of_stream(io.BytesIO(data), chunk_bytes=1000) == (hashlib.sha256(data).hexdigest(), len(data))


def test_priority_users_go_first_in_configured_order_and_absent_ones_are_ignored():
    users = ["c", "a", "b", "d"]
    assert order_users(users, ("d", "zz", "b")) == (["d", "b", "a", "c"], 2)


def test_retention_keeps_each_users_newest_even_when_expired():
    manifests = [("a", "20260101T020000Z", "k1"), ("a", "20260102T020000Z", "k2"),
                 ("b", "20260101T020000Z", "k3"), ("b", "20261120T020000Z", "k4")]
    # 60 days before 2026-11-30 is 2026-10-01.
    kept, expired = split_by_retention(manifests, datetime(2026, 11, 30, tzinfo=timezone.utc), RetentionPolicy(60))
    # k3 is b's checkpoint before the window (its newest snapshot at or before 2026-10-01).
    assert [k for *_, k in kept] == ["k2", "k3", "k4"]
    assert [k for *_, k in expired] == ["k1"]


@pytest.mark.parametrize("path,ok", [("reports/2026/q3.pdf", True), ("../escape", False), ("/abs", False),
                                     ("a//b", True), ("a/../b", False), ("a\\..\\b", False)])
def test_restore_paths_stay_inside_the_target(path, ok):
    assert (safe_relative(path) is not None) is ok


def test_every_malformed_message_in_the_fixture_is_invalid_except_the_unknown_run():
    records = load_event("sqs_malformed_jobs.json")["Records"]
    invalid = []
    for record in records:
        try:
            parse_job(record["body"])
        except InvalidJob:
            invalid.append(record["messageId"])
    assert invalid == ["not-json", "no-user", "bad-run-id", "slash-user", "future-version"]
    assert parse_job(Job("20261125T020000Z", "u").body()) == Job("20261125T020000Z", "u")


def test_schedule_event_without_time_is_invalid():
    with pytest.raises(InvalidJob):
        handle_schedule_event(None, None, {"detail": {}})
    with pytest.raises(InvalidJob):
        handle_schedule_event(None, None, {"time": "yesterday"})


class FlakySqs:
    """SendMessageBatch that answers 200 but fails some entries the first time (as SQS can)."""

    def __init__(self):
        self.calls = []
        self.delivered = []

    def send_message_batch(self, QueueUrl, Entries):
        self.calls.append([e["Id"] for e in Entries])
        failed = Entries[::2] if len(self.calls) == 1 else []
        ok = [e for e in Entries if e not in failed]
        self.delivered += [e["MessageBody"] for e in ok]
        return {"Successful": [{"Id": e["Id"]} for e in ok],
                "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in failed]}


def test_failed_entries_in_a_successful_batch_response_are_sent_again():
    sqs = FlakySqs()
    settings = Settings("s", "b", "r", "c", job_queue_url="q", sleep=lambda s: None)
    jobs = [Job("20261125T020000Z", f"u{i}") for i in range(7)]
    assert enqueue_jobs(sqs, settings, jobs) == 7
    assert sorted(sqs.delivered) == sorted(j.body() for j in jobs)
    assert len(sqs.calls) == 2 and len(sqs.calls[1]) == 4


def test_sender_faults_are_not_retried_forever():
    class Rejecting:
        def send_message_batch(self, QueueUrl, Entries):
            return {"Successful": [], "Failed": [{"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents",
                                                  "Message": "bad"} for e in Entries]}
    settings = Settings("s", "b", "r", "c", job_queue_url="q", sleep=lambda s: None)
    with pytest.raises(EnqueueFailed, match="InvalidMessageContents"):
        enqueue_jobs(Rejecting(), settings, [Job("20261125T020000Z", "u")])


def test_settings_from_lambda_environment():
    environ = {contract.ENV_SOURCE_BUCKET: "src", contract.ENV_BACKUP_BUCKET: "bak", contract.ENV_RUNS_TABLE: "runs",
               contract.ENV_CONTENT_TABLE: "content", contract.ENV_KEY_ARN: "arn:aws:kms:us-east-1:1:key/k",
               contract.ENV_RETENTION_DAYS: "30", contract.ENV_PRIORITY_USERS: "vip1,vip2", contract.ENV_STACK_NAME: "s"}
    settings = settings_from_environ(environ)
    assert (settings.retention_days, settings.priority_users, settings.stack_name) == (30, ("vip1", "vip2"), "s")
    assert settings.sse() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:us-east-1:1:key/k"}
    with pytest.raises(MissingSetting, match="BACKUP_BUCKET"):
        settings_from_environ({contract.ENV_SOURCE_BUCKET: "src"})


def test_worker_metrics_count_completed_jobs_and_closed_runs():
    from handlers.worker import metric_values
    job = Job("20261125T020000Z", "u")
    outcomes = [JobOutcome(job, "COMPLETED", {"bytes_new": 10, "bytes_deduplicated": 5, "changes_missed": 3},
                           finalized_run={"status": "SUCCEEDED"}),
                JobOutcome(job, "FAILED"), JobOutcome(job, "DUPLICATE")]
    assert metric_values(outcomes) == {contract.METRIC_USERS_BACKED_UP: 1, contract.METRIC_USERS_FAILED: 1,
                                       contract.METRIC_BYTES_NEW: 10, contract.METRIC_BYTES_DEDUPLICATED: 5,
                                       contract.METRIC_CHANGES_MISSED: 3, contract.METRIC_RUNS_SUCCEEDED: 1}


def test_the_lambda_zip_carries_the_engine_and_no_build_or_cli_code():
    from backup_cfn.deploy.handler_package import build_package
    files = build_package().files
    assert {"handlers/initiator.py", "handlers/worker.py", "handlers/pruner.py", "handlers/runtime.py",
            "backup_cfn/engine/worker.py", "backup_cfn/engine/pruner.py", "backup_cfn/contract.py"} <= set(files)
    assert not [f for f in files if f.startswith(("troposphere/", "awacs/", "click/", "rich/", "moto/"))
                or f in ("backup_cfn/config.py", "backup_cfn/errors.py", "backup_cfn/template.py", "cli.py")]


@pytest.mark.parametrize("extra,reason", [
    ({"part": -1, "after": "u/a"}, "no valid part: -1"),
    ({"part": "2", "after": "u/a"}, "no valid part: '2'"),
    ({"part": True, "after": "u/a"}, "no valid part: True"),
    ({"part": 10**9, "after": "u/a"}, "no valid part: 1000000000"),
    ({"part": 2}, "continuation has no valid 'after' key: None"),
    ({"part": 2, "after": "other/a"}, "continuation has no valid 'after' key: 'other/a'"),
    ({"part": 2, "after": "u/" + "x" * 2000}, "continuation has no valid 'after' key: 'u/xxx"),
    ({"previous_run_id": "yesterday"}, "no valid previous_run_id: 'yesterday'"),
    ({"previous_run_id": "20261126T020000Z"}, "no valid previous_run_id: '20261126T020000Z'"),
    ({"last_of_shard": "yes"}, "no valid last_of_shard: 'yes'"),
])
def test_continuation_fields_that_are_not_what_the_worker_sends_are_invalid(extra, reason):
    body = json.dumps({"version": 1, "run_id": "20261125T020000Z", "user": "u", **extra})
    with pytest.raises(InvalidJob, match=re.escape(reason)):
        parse_job(body)


def test_a_job_message_carries_its_previous_run_and_a_continuation_its_place():
    job = Job.for_run("20261125T020000Z", "u", "20261124T020000Z")
    assert parse_job(job.body()) == job
    more = job.continuation("20261124T020000Z", "u/reports/0999.pdf")
    assert parse_job(more.body()) == more and (more.part, more.after) == (1, "u/reports/0999.pdf")
    old = parse_job(json.dumps({"version": 1, "run_id": "20261125T020000Z", "user": "u"}))
    assert not old.carries_previous   # an older message: the worker reads the previous run from the run record
    assert not old.last_of_shard and "last_of_shard" not in job.body()
    last = Job.for_run("20261125T020000Z", "u", None, last_of_shard=True)
    assert parse_job(last.body()) == last and parse_job(last.continuation(None, "u/a").body()).last_of_shard
