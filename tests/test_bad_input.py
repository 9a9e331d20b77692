"""Bad input without a test elsewhere (the catalogue is docs/bad-input.md): odd source keys backed
up and restored safely, zero-byte and multi-GB objects, objects changed while being backed up,
handler events of the wrong shape, and a restore target that cannot be written."""
from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from backup_cfn import aws
from backup_cfn.engine import naming, runs
from backup_cfn.engine.contentstore import SourceObject, copy_content
from backup_cfn.engine.errors import InvalidJob
from backup_cfn.engine.initiator import handle_schedule_event, start_run
from backup_cfn.engine.manifest import read_manifest
from backup_cfn.engine.restore import load_for_restore, restore_to_directory, restore_to_s3
from backup_cfn.engine.worker import Job, handle_message, parse_job
from backup_cfn.ops.target import DeployedEnvironment

from engine_support import all_content_versions, backup, context, put, read_tree, sha, sqs_record_event

DATA = b"%PDF-1.7 odd names " * 50
LONG = "/".join(["d" * 199] * 5)                       # 999 characters in five directory levels
ODD_KEYS = {
    "rapports/été/naïve résumé 📄.pdf": DATA + b"unicode",
    "my reports/Q3 final (v2).pdf": DATA + b"spaces",
    "../escape.pdf": DATA + b"dotdot-leading",
    "a/../../b.pdf": DATA + b"dotdot-inner",
    "/abs.pdf": DATA + b"leading-slash",                # the S3 key is "user//abs.pdf"
    LONG[:990] + ".pdf": DATA + b"long",
    "empty.txt": b"",
    "also-empty.bin": b"",
}
SAFE = {"rapports/été/naïve résumé 📄.pdf", "my reports/Q3 final (v2).pdf", LONG[:990] + ".pdf",
        "empty.txt", "also-empty.bin"}


def test_odd_keys_and_empty_objects_are_backed_up_whole_and_restored_only_inside_the_target(engine, tmp_path):
    for path, data in ODD_KEYS.items():
        put(engine, "odd", path, data)
    run = backup(engine)
    assert run["status"] == runs.SUCCEEDED and run["users_done"] == 1
    assert run["files_total"] == len(ODD_KEYS)
    manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, "odd")
    # Every key is in the snapshot under its exact name, with its content's hash.
    assert {p: e.sha256 for p, e in manifest.entries.items()} == {p: sha(d) for p, d in ODD_KEYS.items()}
    assert manifest.entries["empty.txt"].size == 0
    # The two empty objects share one stored (empty) content.
    assert len(all_content_versions(engine)) == len({sha(d) for d in ODD_KEYS.values()})

    target = tmp_path / "target"
    report = restore_to_directory(engine.s3, engine.settings.backup_bucket, manifest, target)
    assert read_tree(target) == {p: ODD_KEYS[p] for p in SAFE}
    assert report.files == len(SAFE)
    assert sorted(report.problems) == sorted(f"{p}: unsafe path (absolute or with '..'); not restored"
                                             for p in set(ODD_KEYS) - SAFE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]      # nothing written beside it
    assert not list(tmp_path.rglob("*.restoring"))

    # The unsafe names are not lost: restored to S3 they come back under their own keys.
    restored_bucket = f"{engine.settings.source_bucket}-restored"
    engine.s3.create_bucket(Bucket=restored_bucket)
    s3_report = restore_to_s3(engine.s3, engine.settings.backup_bucket, manifest, restored_bucket, "drill")
    assert s3_report.ok and s3_report.files == len(ODD_KEYS)
    for path, data in ODD_KEYS.items():
        assert engine.s3.get_object(Bucket=restored_bucket, Key=f"drill/{path}")["Body"].read() == data


def test_folder_markers_are_recorded_skips_and_their_folders_files_are_kept(engine, tmp_path):
    put(engine, "fm", "reports/", b"")                   # what the S3 console's "Create folder" makes
    put(engine, "fm", "reports/a.pdf", DATA)
    run = backup(engine)
    assert run["status"] == runs.SUCCEEDED and run["files_total"] == 1
    manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, "fm")
    assert list(manifest.entries) == ["reports/a.pdf"]
    assert manifest.skipped == {"reports/": "folder marker (no content)"}
    assert restore_to_directory(engine.s3, engine.settings.backup_bucket, manifest, tmp_path / "t").ok
    assert read_tree(tmp_path / "t") == {"reports/a.pdf": DATA}


def test_a_name_the_local_file_system_cannot_hold_is_a_problem_for_that_file_only(engine, tmp_path):
    """S3 allows a 300-byte path segment; most file systems stop at 255. Restoring to a directory
    reports that file and restores the others."""
    too_long = "x" * 300 + ".pdf"
    put(engine, "fs", too_long, DATA + b"long")
    put(engine, "fs", "ok.pdf", DATA)
    assert backup(engine)["status"] == runs.SUCCEEDED
    manifest = load_for_restore(engine.s3, engine.settings.backup_bucket, "fs")
    report = restore_to_directory(engine.s3, engine.settings.backup_bucket, manifest, tmp_path / "t")
    assert report.files == 1 and read_tree(tmp_path / "t") == {"ok.pdf": DATA}
    assert len(report.problems) == 1 and report.problems[0].startswith(f"{too_long}: cannot write here: File name too long")


def test_an_object_overwritten_between_head_and_read_is_recorded_as_the_version_read(engine):
    """The source bucket is versioned. The object changes after the listing, so the read pinned to
    the listed ETag is refused; the HEAD then pins the current version, which is what is read,
    stored and recorded although the object is overwritten again before the read; that overwrite
    is the next run's change."""
    put(engine, "chg", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)
    writer = aws.client(engine.env, "s3")
    pinned, changed = [], []

    def overwrite_after_listing(step):
        if step == "listed" and not pinned:
            writer.put_object(Bucket=engine.settings.source_bucket, Key="chg/a.pdf", Body=DATA + b"v1")
            pinned.append(writer.head_object(Bucket=engine.settings.source_bucket, Key="chg/a.pdf"))

    def overwrite_after_head(**_):
        if not changed:
            changed.append(True)
            writer.put_object(Bucket=engine.settings.source_bucket, Key="chg/a.pdf", Body=DATA + b"v2")

    engine.s3.meta.events.register("after-call.s3.HeadObject", overwrite_after_head)
    try:
        outcome = handle_message(engine.clients, engine.settings, Job(run_id, "chg").body(),
                                 hook=overwrite_after_listing)
    finally:
        engine.s3.meta.events.unregister("after-call.s3.HeadObject", overwrite_after_head)
    assert outcome.status == runs.COMPLETED and changed
    entry = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("chg", run_id)).entries["a.pdf"]
    assert (entry.sha256, entry.etag, entry.size, entry.version_id) == (
        sha(DATA + b"v1"), pinned[0]["ETag"], len(DATA) + 2, pinned[0]["VersionId"])
    stored = engine.s3.get_object(Bucket=engine.settings.backup_bucket, Key=naming.content_key(entry.sha256))
    assert stored["Body"].read() == DATA + b"v1"
    engine.clock.advance(days=1)
    second = backup(engine)
    assert second["files_changed"] == 1 and second["bytes_new"] == len(DATA) + 2


def test_an_object_overwritten_between_hashing_and_copying_stores_the_version_hashed(engine):
    put(engine, "chg", "a.pdf", DATA)
    run_id = naming.run_id_for(engine.clock())
    start_run(engine.clients, engine.settings, run_id)

    def overwrite(step):
        if step == "hashed":
            put(engine, "chg", "a.pdf", DATA + b"v2")

    outcome = handle_message(engine.clients, engine.settings, Job(run_id, "chg").body(), hook=overwrite)
    assert outcome.status == runs.COMPLETED
    manifest = read_manifest(engine.s3, engine.settings.backup_bucket, naming.manifest_key("chg", run_id))
    assert manifest.entries["a.pdf"].sha256 == sha(DATA)
    assert all_content_versions(engine) == {naming.content_key(sha(DATA)): 1}
    body = engine.s3.get_object(Bucket=engine.settings.backup_bucket, Key=naming.content_key(sha(DATA)))["Body"]
    assert body.read() == DATA          # the copy took the version hashed, not the newer one


GiB = 1024**3


def test_a_multi_gigabyte_object_is_stored_by_multipart_server_side_copy_in_512_mib_parts(engine):
    """No bytes: the S3 client is stubbed with the answers S3 gives for a 6 GiB object."""
    size = 6 * GiB + 123
    s3 = aws.client(engine.env, "s3")
    source = SourceObject(engine.settings.source_bucket, "big/archive.zip", '"etag-6g"', size)
    h = sha(b"big")
    key = naming.content_key(h)
    part = engine.settings.multipart_part_size
    stubber = Stubber(s3)
    stubber.add_response("create_multipart_upload", {"UploadId": "up-1", "Bucket": engine.settings.backup_bucket,
                                                     "Key": key}, {"Bucket": engine.settings.backup_bucket, "Key": key,
                                                                  "ChecksumAlgorithm": "SHA256", **engine.settings.sse()})
    ranges = []
    for number, start in enumerate(range(0, size, part), start=1):
        end = min(start + part, size) - 1
        ranges.append((start, end))
        stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": f'"p{number}"', "ChecksumSHA256": "c="}}, {
            "Bucket": engine.settings.backup_bucket, "Key": key, "UploadId": "up-1", "PartNumber": number,
            "CopySource": ANY, "CopySourceIfMatch": '"etag-6g"', "CopySourceRange": f"bytes={start}-{end}"})
    stubber.add_response("complete_multipart_upload", {"ETag": '"done-13"'}, {
        "Bucket": engine.settings.backup_bucket, "Key": key, "UploadId": "up-1",
        "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": f'"p{n}"', "ChecksumSHA256": "c="}
                                      for n in range(1, len(ranges) + 1)]}})
    with stubber:
        copy_content(s3, engine.settings, h, source)
        stubber.assert_no_pending_responses()
    assert len(ranges) == 13 and ranges[-1] == (12 * part, size - 1)       # every byte, once


def test_a_multi_gigabyte_copy_that_fails_midway_aborts_its_upload(engine):
    size = 6 * GiB
    s3 = aws.client(engine.env, "s3")
    source = SourceObject(engine.settings.source_bucket, "big/archive.zip", '"etag-6g"', size)
    stubber = Stubber(s3)
    stubber.add_response("create_multipart_upload", {"UploadId": "up-2"})
    stubber.add_response("upload_part_copy", {"CopyPartResult": {"ETag": '"p1"'}})
    stubber.add_client_error("upload_part_copy", "PreconditionFailed",
                             "At least one of the pre-conditions you specified did not hold", 412)
    stubber.add_response("abort_multipart_upload", {}, {"Bucket": engine.settings.backup_bucket,
                                                        "Key": ANY, "UploadId": "up-2"})
    with stubber, pytest.raises(Exception, match="PreconditionFailed"):
        copy_content(s3, engine.settings, sha(b"big2"), source)
    stubber.assert_no_pending_responses()


HUGE = 256 * 1024 - 64     # just under SQS's largest message


@pytest.mark.parametrize("body,reason", [
    (json.dumps({"version": 1, "run_id": 20261125, "user": "a"}), "no valid run_id"),
    (json.dumps({"version": 1, "run_id": "20261125T020000Z", "user": ["a"]}), "no valid user"),
    (json.dumps({"version": "1", "run_id": "20261125T020000Z", "user": "a"}), "unsupported job message version"),
    (json.dumps(["version", 1]), "not a JSON object"),
    (json.dumps(None), "not a JSON object"),
    ("x" * HUGE, "not JSON"),
    (json.dumps({"version": 1, "run_id": "20261125T020000Z", "user": "u" * HUGE}), "no valid user"),
], ids=["run-id-number", "user-list", "version-string", "array", "null", "huge-not-json", "huge-user"])
def test_job_messages_of_the_wrong_type_or_size_are_invalid_with_a_short_reason(body, reason):
    with pytest.raises(InvalidJob, match=reason) as caught:
        parse_job(body)
    assert len(str(caught.value)) < 200        # a huge body is not copied into logs


def test_a_huge_message_through_the_worker_handler_is_failed_for_the_dead_letter_queue(engine):
    from handlers import runtime, worker as worker_handler
    runtime.configure(engine.clients, engine.settings)
    response = worker_handler.handler(sqs_record_event("x" * HUGE), context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert engine.s3.list_objects_v2(Bucket=engine.settings.backup_bucket)["KeyCount"] == 0


@pytest.mark.parametrize("event", [
    {"time": 1795572000}, {"time": None}, {"time": "2026-11-25T02:00:00Z", "detail": {"users": "alice"}},
    {"time": "2026-11-25T02:00:00Z", "detail": {"users": [1, 2]}},
    {"time": "2026-11-25T02:00:00Z", "detail": {"users": ["ok", "../etc"]}}, [], "event",
], ids=["time-number", "time-null", "users-string", "users-numbers", "users-path", "list", "string"])
def test_schedule_events_of_the_wrong_shape_are_invalid_and_start_nothing(engine, event):
    with pytest.raises(InvalidJob):
        handle_schedule_event(engine.clients, engine.settings, event)
    assert runs.get_run(engine.clients.dynamodb, engine.settings, "20261125T020000Z") is None


@pytest.mark.parametrize("event", [{"dry_run": "no"}, {"dry_run": 1}, {"dry_run": True}])
def test_a_pruner_event_with_a_truthy_non_boolean_dry_run_deletes_nothing(engine, event):
    """A string or number in `dry_run` errs on the safe side: any truthy value is a dry run."""
    from handlers import pruner as pruner_handler, runtime
    put(engine, "ned", "a.pdf", DATA)
    backup(engine)
    put(engine, "ned", "a.pdf", DATA + b"v2")
    engine.clock.advance(days=5)     # the checkpoint before the window, so the first snapshot expires
    backup(engine)
    engine.clock.advance(days=65)
    backup(engine)
    runtime.configure(engine.clients, engine.settings)
    result = pruner_handler.handler(event, context("pruner"))
    assert result["dry_run"] is True and result["content_deleted"] == 1
    assert engine.s3.head_object(Bucket=engine.settings.backup_bucket, Key=naming.content_key(sha(DATA)))


def test_restore_to_a_directory_that_cannot_be_created_is_one_line(engine, environments, tmp_path, monkeypatch):
    import cli
    put(engine, "rita", "a.pdf", DATA)
    assert backup(engine)["status"] == runs.SUCCEEDED
    from backup_cfn.ops import restore as ops_restore

    monkeypatch.setattr(ops_restore, "connect", lambda env: DeployedEnvironment(env, engine.clients, engine.settings,
                                                                                engine.outputs))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli.cli, ["--environments", str(environments), "restore", "--env", "local",
                                          "--user", "rita", "--to", str(blocker / "sub")], obj={},
                                env={"COLUMNS": "250"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(blocker / "sub") in errors[0], result.output
    assert errors[0].endswith("cannot restore there: Not a directory")
    assert blocker.read_text() == "not a directory"
