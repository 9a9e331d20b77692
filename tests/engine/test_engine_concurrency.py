"""Store once under contention, and a crash at every worker step retried to the same end state."""
from __future__ import annotations

import json
import threading

import pytest

from backup_cfn.engine import contentstore, naming, runs
from backup_cfn.engine.contentstore import SourceObject, ensure_stored, get_entry
from backup_cfn.engine.errors import LeaseHeld
from backup_cfn.engine.initiator import start_run
from backup_cfn.engine.manifest import list_manifests, read_manifest
from backup_cfn.engine.attempts import Deadline
from backup_cfn.engine.settings import Settings
from backup_cfn.engine.worker import Job, handle_message

from engine_support import all_content_versions, backup, content_versions, make_engine, put, sha

DATA = b"PK\x03\x04 the same quarterly spreadsheet " * 2000


def test_many_workers_storing_the_same_content_at_once_make_exactly_one_copy(local_env):
    engine = make_engine(local_env)
    put(engine, "src", "same.xlsx", DATA)
    head = engine.s3.head_object(Bucket=engine.settings.source_bucket, Key="src/same.xlsx")
    source = SourceObject(engine.settings.source_bucket, "src/same.xlsx", head["ETag"], len(DATA))
    barrier = threading.Barrier(16)
    results, errors = [], []

    def store(i):
        barrier.wait()
        try:
            results.append(ensure_stored(engine.clients, engine.settings, sha(DATA), source, f"job-{i}"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=store, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.copied_bytes for r in results) == [0] * 15 + [len(DATA)]
    assert content_versions(engine, sha(DATA)) == 1
    assert get_entry(engine.clients.dynamodb, engine.settings.content_table, sha(DATA))["state"] == "STORED"


def test_forty_users_with_the_same_file_backed_up_on_eight_threads(local_env):
    engine = make_engine(local_env)
    for i in range(40):
        put(engine, f"user-{i:02d}", "policy.pdf", DATA)
        put(engine, f"user-{i:02d}", f"own-{i}.pdf", DATA + bytes([i]))
    run = backup(engine, threads=8)
    assert run["status"] == runs.SUCCEEDED and run["users_done"] == 40
    versions = all_content_versions(engine)
    assert len(versions) == 41 and set(versions.values()) == {1}
    assert run["bytes_new"] == len(DATA) + sum(len(DATA) + 1 for _ in range(40))


STEPS = ["leased", "listed", "hashed", "claimed_content", "copied", "marked_stored", "stored",
         "manifest_written", "recorded", "finalized"]


class Crash(BaseException):
    """The process dies: nothing after this point runs, not even exception handlers."""


@pytest.mark.parametrize("step", STEPS)
def test_retry_after_a_crash_at_each_worker_step_reaches_the_same_state(local_env, step):
    engine = make_engine(local_env, claim_wait_seconds=0.3)
    put(engine, "gina", "a.pdf", DATA)
    put(engine, "gina", "b.pdf", DATA + b"b")
    put(engine, "hank", "a.pdf", DATA)  # shares content with gina
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)

    def crash_at(name):
        if name == step:
            raise Crash(name)

    with pytest.raises(Crash):
        handle_message(engine.clients, engine.settings, Job(run_id, "gina").body(), hook=crash_at)
    if step != "finalized":
        # The other user's job runs meanwhile; it may have to wait for gina's claim to go stale.
        try:
            handle_message(engine.clients, engine.settings, Job(run_id, "hank").body())
        except Exception as exc:  # noqa: BLE001
            assert "STORING" in str(exc), exc
    # The message comes back after the visibility timeout, by when the dead attempt's lease is stale.
    engine.clock.advance(seconds=engine.settings.stale_after_seconds + 1)
    outcome = handle_message(engine.clients, engine.settings, Job(run_id, "gina").body(), receive_count=2)
    assert outcome.status in ("COMPLETED", "DUPLICATE")
    handle_message(engine.clients, engine.settings, Job(run_id, "hank").body(), receive_count=2)

    record = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (record["users_done"], record["users_pending"], record["status"]) == (2, 0, runs.SUCCEEDED)
    assert record["files_total"] == 3
    assert all_content_versions(engine) == {naming.content_key(sha(DATA)): 1, naming.content_key(sha(DATA + b"b")): 1}
    manifest_versions = engine.s3.list_object_versions(Bucket=engine.settings.backup_bucket,
                                                       Prefix=naming.manifest_key("gina", run_id))["Versions"]
    assert len(manifest_versions) == 1
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("gina", run_id))
    assert {p: e.sha256 for p, e in manifest.entries.items()} == {"a.pdf": sha(DATA), "b.pdf": sha(DATA + b"b")}
    for h in (sha(DATA), sha(DATA + b"b")):
        assert get_entry(engine.clients.dynamodb, engine.settings.content_table, h)["state"] == contentstore.STORED


def _second_run(engine, new: bytes) -> str:
    """A first run of gina (a.pdf, b.pdf) and hank (a.pdf), then a day later gina's b.pdf and hank's
    a.pdf both hold `new`, content nobody stored: the second run's ID (started, jobs not run)."""
    put(engine, "gina", "a.pdf", DATA)
    put(engine, "gina", "b.pdf", DATA + b"b")
    put(engine, "hank", "a.pdf", DATA)
    first = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, first)
    for user in ("gina", "hank"):
        assert handle_message(engine.clients, engine.settings, Job(first, user).body()).status == "COMPLETED"
    engine.clock.advance(days=1)
    put(engine, "gina", "b.pdf", new)
    put(engine, "hank", "a.pdf", new)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)
    return run_id


@pytest.mark.parametrize("step", STEPS)
def test_an_incremental_job_claiming_with_its_lease_retried_after_a_crash_at_each_step_stores_once(local_env, step):
    """An incremental run's job takes its lease and its first claim of new content in one request
    (attempts.acquire_fresh_lease_with): a crash at any step after it still ends in one copy."""
    engine = make_engine(local_env, claim_wait_seconds=0.3)
    new = DATA + b"new on day two"
    run_id = _second_run(engine, new)

    def crash_at(name):
        if name == step:
            raise Crash(name)

    with pytest.raises(Crash):
        handle_message(engine.clients, engine.settings, Job(run_id, "gina").body(), hook=crash_at)
    if step != "finalized":
        try:   # hank needs the same new content: it may have to wait for gina's claim to go stale
            handle_message(engine.clients, engine.settings, Job(run_id, "hank").body())
        except Exception as exc:  # noqa: BLE001
            assert "STORING" in str(exc), exc
    engine.clock.advance(seconds=engine.settings.stale_after_seconds + 1)
    assert handle_message(engine.clients, engine.settings, Job(run_id, "gina").body(),
                          receive_count=2).status in ("COMPLETED", "DUPLICATE")
    handle_message(engine.clients, engine.settings, Job(run_id, "hank").body(), receive_count=2)

    record = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (record["users_done"], record["users_pending"], record["status"]) == (2, 0, runs.SUCCEEDED)
    assert all_content_versions(engine) == {naming.content_key(h): 1 for h in (sha(DATA), sha(DATA + b"b"), sha(new))}
    assert get_entry(engine.clients.dynamodb, engine.settings.content_table, sha(new))["state"] == contentstore.STORED
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("gina", run_id))
    assert {p: e.sha256 for p, e in manifest.entries.items()} == {"a.pdf": sha(DATA), "b.pdf": sha(new)}


def test_an_incremental_job_takes_its_lease_and_first_claim_in_one_request(local_env):
    engine = make_engine(local_env)
    new = DATA + b"new on day two"
    run_id = _second_run(engine, new)
    sent: list[str] = []
    engine.clients.dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: sent.append(model.name))
    seen = []

    def duplicate_arrives(name):
        # The lease is held from the request that claims the first new content: a duplicate is refused.
        if name == "leased" and not seen:
            before = len(sent)
            with pytest.raises(LeaseHeld):
                handle_message(engine.clients, engine.settings, Job(run_id, "gina").body())
            seen.append(sent[before:])
            del sent[before:]

    assert handle_message(engine.clients, engine.settings, Job(run_id, "gina").body(),
                          hook=duplicate_arrives).status == "COMPLETED"
    # The duplicate: its one-request claim refused, its lease refused, its error not noted (the job is held).
    assert seen == [["TransactWriteItems", "UpdateItem", "UpdateItem"]]
    # gina: the lease and the claim (one transaction), the mark, the record (one transaction).
    assert [name for name in sent if name != "GetItem"] == ["TransactWriteItems", "UpdateItem", "TransactWriteItems"]
    sent.clear()
    # hank's new content is the one gina stored: the one-request claim is refused (nothing written),
    # then the lease and a touch, as without it.
    assert handle_message(engine.clients, engine.settings, Job(run_id, "hank").body()).status == "COMPLETED"
    assert [name for name in sent if name != "GetItem"][:3] == ["TransactWriteItems", "UpdateItem", "UpdateItem"]
    record = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (record["users_done"], record["status"]) == (2, runs.SUCCEEDED) and record["bytes_new"] == len(new)
    assert content_versions(engine, sha(new)) == 1
    jobs = {job["user"]: job for job in runs.user_jobs(engine.clients.dynamodb, engine.settings, run_id)}
    assert jobs["gina"]["attempts"] == 1 and jobs["hank"]["attempts"] == 1


def test_a_live_attempt_holds_the_user_job_against_a_duplicate_delivery(local_env):
    engine = make_engine(local_env)
    put(engine, "ivy", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)
    seen = []

    def duplicate_arrives(name):
        # The lease is taken before the first content claim: from there on the job is held.
        if name == "leased" and not seen:
            seen.append(name)
            with pytest.raises(LeaseHeld):
                handle_message(engine.clients, engine.settings, Job(run_id, "ivy").body())

    assert handle_message(engine.clients, engine.settings, Job(run_id, "ivy").body(),
                          hook=duplicate_arrives).status == "COMPLETED"
    assert seen == ["leased"]
    # A late duplicate of the finished job changes nothing.
    assert handle_message(engine.clients, engine.settings, Job(run_id, "ivy").body()).status == "DUPLICATE"
    record = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert record["users_done"] == 1
    assert len(list_manifests(engine.s3, engine.settings.backup_bucket, "ivy")) == 1


def test_content_of_an_expired_previous_snapshot_is_touched_not_assumed(local_env):
    """Case A's condition (docs/engine.md): content named by the previous snapshot is skipped only
    while that snapshot is young. Here it is old and a later run already replaced it, so the
    collector, running mid-job, deletes both; the job must store the content again."""
    from backup_cfn.engine.pruner import prune
    from backup_cfn.engine.restore import load_for_restore
    engine = make_engine(local_env, retention_days=3)
    put(engine, "ann", "a.pdf", DATA)
    first = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, first)
    handle_message(engine.clients, engine.settings, Job(first, "ann").body())
    engine.clock.advance(days=10)
    backfill = naming.run_id_for(engine.clock())          # names `first` as its previous run
    start_run(engine.clients, engine.settings, backfill)
    put(engine, "ann", "a.pdf", DATA + b"v2")
    engine.clock.advance(seconds=5)
    later = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, later)
    handle_message(engine.clients, engine.settings, Job(later, "ann").body())
    put(engine, "ann", "a.pdf", DATA)                       # back to the first content, same ETag

    def collect_mid_job(step):
        if step == "hashed":
            report = prune(engine.clients, engine.settings)
            assert naming.manifest_key("ann", first) in report.manifests_expired
            assert sha(DATA) in report.content_deleted

    handle_message(engine.clients, engine.settings, Job(backfill, "ann").body(), hook=collect_mid_job)
    manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, "ann", run_id=backfill)
    assert manifest.entries["a.pdf"].sha256 == sha(DATA)
    body = engine.s3.get_object(Bucket=engine.settings.backup_bucket, Key=naming.content_key(sha(DATA)))["Body"].read()
    assert body == DATA


class DeadlineAfter(Deadline):
    """An invocation whose time runs out after `checks` looks at the clock: a hand-on at a known place."""

    def __init__(self, checks: int):
        super().__init__(None, Settings("", "", "", ""))
        self.budget, self._left = 900.0, checks

    def passed(self) -> bool:
        self._left -= 1
        return self._left < 0


def test_a_split_job_drops_a_duplicate_continuation_and_resends_one_its_dead_attempt_may_not_have_sent(local_env):
    engine = make_engine(local_env)
    files = {f"f{i:02d}.pdf": DATA + bytes([i % 7]) for i in range(30)}
    for path, data in files.items():
        put(engine, "kit", path, data)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)
    sqs, queue = engine.clients.sqs, engine.settings.job_queue_url
    while sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        pass  # the initiator's message is ours to hand in directly
    first = Job.for_run(run_id, "kit", None).body()

    assert handle_message(engine.clients, engine.settings, first, deadline=DeadlineAfter(12)).status == "HANDED_ON"
    # The first part's message comes back (its invocation died after recording the hand-on, perhaps
    # before sending): it sends the continuation again and stops.
    assert handle_message(engine.clients, engine.settings, first, receive_count=2).status == "DUPLICATE"
    continuations = [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                            VisibilityTimeout=0)["Messages"]]
    assert len(continuations) == 2 and len(set(continuations)) == 1 and json.loads(continuations[0])["part"] == 1
    outcomes = [handle_message(engine.clients, engine.settings, body).status for body in continuations]
    assert outcomes == ["COMPLETED", "DUPLICATE"]

    record = runs.get_run(engine.clients.dynamodb, engine.settings, run_id)
    assert (record["status"], record["users_done"], record["files_total"]) == (runs.SUCCEEDED, 1, 30)
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("kit", run_id))
    assert {p: e.sha256 for p, e in manifest.entries.items()} == {p: sha(d) for p, d in files.items()}
    assert set(all_content_versions(engine).values()) == {1} and len(all_content_versions(engine)) == 7
