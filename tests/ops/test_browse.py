"""Browsing backups on the emulator, through real backups: find (across users, narrowed by user and
period, by SHA-256, with and without the manifest cache), compare of real snapshots, and the
longer-term retention rules applied by the real garbage collector."""
from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone

import pytest

from backup_cfn.engine import naming
from backup_cfn.engine.catalog import ManifestCache
from backup_cfn.engine.errors import RestoreError
from backup_cfn.engine.history import CHANGED, CURRENT, DELETED, METADATA, MODIFIED, compare
from backup_cfn.engine.manifest import list_manifests
from backup_cfn.engine.pruner import prune
from backup_cfn.engine.restore import load_for_restore
from backup_cfn.errors import UserError
from backup_cfn.ops.find import find
from backup_cfn.ops.target import DeployedEnvironment

from engine_support import backup, delete, put, sha

Q3, Q3_V2 = b"%PDF-1.7 q3 " * 200, b"%PDF-1.7 q3 revised " * 210
TERMS = b"%PDF-1.7 terms " * 300


def target_of(engine) -> DeployedEnvironment:
    return DeployedEnvironment(engine.env, engine.clients, engine.settings, engine.outputs)


def three_days(engine) -> list[str]:
    """ann deletes her q3 report on day 2, ben revises his; cy changes nothing. Returns the run IDs."""
    for user in ("ann", "ben", "cy"):
        put(engine, user, "reports/q3.pdf", Q3 + user.encode())
        put(engine, user, "terms.pdf", TERMS)
    run_ids = [backup(engine)["run_id"]]
    delete(engine, "ann", "reports/q3.pdf")
    put(engine, "ben", "reports/q3.pdf", Q3_V2)
    engine.clock.advance(days=1)
    run_ids.append(backup(engine)["run_id"])
    engine.clock.advance(days=1)
    run_ids.append(backup(engine)["run_id"])
    return run_ids


def test_find_gives_each_version_its_first_and_last_run_and_whether_it_is_still_there(engine):
    d1, d2, d3 = three_days(engine)
    found = find(target_of(engine), "q3.pdf")
    versions = [(v["user"], v["sha256"], v["first_run"], v["last_run"], v["snapshots"], v["state"])
                for v in found["versions"]]
    assert versions == [
        ("ben", sha(Q3_V2), d2, d3, 2, CURRENT),
        ("cy", sha(Q3 + b"cy"), d1, d3, 3, CURRENT),
        ("ann", sha(Q3 + b"ann"), d1, d1, 1, DELETED),        # the deleted file, and when it was last seen
        ("ben", sha(Q3 + b"ben"), d1, d1, 1, CHANGED),
    ]
    # One listing and one read per snapshot, nothing else.
    assert (found["snapshots_listed"], found["manifests_read"], found["s3_requests"]) == (9, 9, 10)

    # Narrowed by user (the listing of one prefix) and by period (by key, without reading the rest).
    mine = find(target_of(engine), "q3.pdf", user="ann")
    assert [v["state"] for v in mine["versions"]] == [DELETED] and mine["manifests_read"] == 3
    later = find(target_of(engine), "*", since=d2[:4] + "-" + d2[4:6] + "-" + d2[6:8])
    assert later["snapshots_searched"] == 6 and {v["first_run"] for v in later["versions"]} == {d2}
    # --until leaves the newest snapshots out; each state is still against the newest (read once more).
    early = find(target_of(engine), "q3.pdf", until=d1[:4] + "-" + d1[4:6] + "-" + d1[6:8])
    assert {(v["user"], v["state"]) for v in early["versions"]} == {("ann", DELETED), ("ben", CHANGED), ("cy", CURRENT)}
    assert early["manifests_read"] == 3 + 3

    # By content: the same terms in every user's every snapshot.
    by_hash = find(target_of(engine), sha(TERMS))
    assert {(v["user"], v["snapshots"]) for v in by_hash["versions"]} == {("ann", 3), ("ben", 3), ("cy", 3)}
    assert find(target_of(engine), "sha256:" + sha(Q3 + b"ann")[:10])["matches"] == 1

    nothing = find(target_of(engine), "*.docx")
    assert (nothing["matches"], nothing["versions"], nothing["manifests_read"]) == (0, [], 9)
    with pytest.raises(RestoreError, match="no backups of user 'dan'"):
        find(target_of(engine), "*", user="dan")
    with pytest.raises(UserError, match="is after --until"):
        find(target_of(engine), "*", since="2026-12-01", until="2026-11-01")
    with pytest.raises(UserError, match="after 'sha256:' give 8 to 64"):
        find(target_of(engine), "sha256:12")


def test_with_the_cache_a_repeated_find_costs_only_the_listing(engine, tmp_path):
    three_days(engine)
    cache = ManifestCache(tmp_path / "cache")
    first = find(target_of(engine), "q3.pdf", cache=cache)
    again = find(target_of(engine), "q3.pdf", cache=cache)
    assert (first["manifests_read"], first["manifests_cached"]) == (9, 0)
    assert (again["manifests_read"], again["manifests_cached"], again["s3_requests"]) == (0, 9, 1)
    assert again["versions"] == first["versions"]
    files = list((tmp_path / "cache").rglob("*.json.gz"))
    assert len(files) == 9 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    # A damaged cache file is read again from S3; expired snapshots leave the cache.
    files[0].write_bytes(b"not gzip")
    assert find(target_of(engine), "q3.pdf", cache=cache)["manifests_read"] == 1
    engine.s3.delete_object(Bucket=engine.settings.backup_bucket, Key=list_manifests(
        engine.s3, engine.settings.backup_bucket, "cy")[0][2])
    find(target_of(engine), "q3.pdf", cache=cache)
    assert len(list((tmp_path / "cache").rglob("*.json.gz"))) == 8


def test_compare_of_real_snapshots_tells_content_from_metadata_changes(engine):
    put(engine, "ann", "a.pdf", Q3)
    put(engine, "ann", "b.pdf", TERMS)
    first = backup(engine)["run_id"]
    put(engine, "ann", "a.pdf", Q3_V2)          # new content
    reupload_as_multipart(engine, "ann/b.pdf", TERMS)   # the same bytes again: another ETag
    engine.clock.advance(days=1)
    second = backup(engine)["run_id"]
    bucket = engine.settings.backup_bucket
    result = compare(load_for_restore(engine.s3, bucket, "ann", run_id=first),
                     load_for_restore(engine.s3, bucket, "ann", run_id=second))
    assert [(c.kind, c.path) for c in result.changes] == [(MODIFIED, "a.pdf"), (METADATA, "b.pdf")]
    assert "etag" in result.changes[1].fields
    assert result.changes[1].before.sha256 == result.changes[1].after.sha256 == sha(TERMS)


def reupload_as_multipart(engine, key: str, data: bytes) -> None:
    s3, bucket = engine.s3, engine.settings.source_bucket
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=data)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})


def test_a_monthly_snapshot_outlives_the_retention_with_its_content_until_its_month_leaves(engine):
    settings = engine.settings.with_(retention_days=3, keep_monthly=2)
    engine.settings = settings
    put(engine, "ann", "report.pdf", b"january " * 100)
    for day in (30, 31):
        engine.clock.set(datetime(2027, 1, day, 2, tzinfo=timezone.utc))
        backup(engine)
    for day in range(1, 11):
        put(engine, "ann", "report.pdf", f"february {day} ".encode() * 100)
        engine.clock.set(datetime(2027, 2, day, 2, tzinfo=timezone.utc))
        backup(engine)
    engine.clock.set(datetime(2027, 2, 11, 6, tzinfo=timezone.utc))
    report = prune(engine.clients, settings, dry_run=True)
    # Kept: the 9th and 10th (within 3 days), the 10th (newest, February's newest), January 31st, and
    # the 8th and 7th: the checkpoint before the window (the 8th ran less than a day before its start).
    assert report.rules["monthly"][1:] == (2, 1) and report.rules["within"][1:] == (2, 1)
    assert report.rules["base"][1:] == (2, 2)
    assert len(report.manifests_expired) == 12 - 5
    prune(engine.clients, settings)
    kept = [run for _, run, _ in list_manifests(engine.s3, settings.backup_bucket, "ann")]
    assert kept == ["20270131T020000Z", "20270207T020000Z", "20270208T020000Z", "20270209T020000Z",
                    "20270210T020000Z"]
    january = load_for_restore(engine.s3, settings.backup_bucket, "ann", run_id="20270131T020000Z")
    body = engine.s3.get_object(Bucket=settings.backup_bucket,
                                Key=naming.content_key(january.entries["report.pdf"].sha256))["Body"].read()
    assert body == b"january " * 100             # its content was not collected

    # In April, January is no longer among the last two months: the snapshot and its content go.
    engine.clock.set(datetime(2027, 4, 1, 6, tzinfo=timezone.utc))
    prune(engine.clients, settings)
    engine.clock.set(datetime(2027, 4, 3, 6, tzinfo=timezone.utc))   # past the collector's grace
    prune(engine.clients, settings)
    kept = [run for _, run, _ in list_manifests(engine.s3, settings.backup_bucket, "ann")]
    assert kept == ["20270210T020000Z"]
    assert sha(b"january " * 100) not in {k.rsplit("/", 1)[-1] for k in _content_keys(engine)}


def _content_keys(engine) -> list[str]:
    listed = engine.s3.list_objects_v2(Bucket=engine.settings.backup_bucket, Prefix="content/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_find_of_one_user_also_shows_what_only_the_journal_captured(engine):
    """Continuous protection: a draft written and deleted between two runs was never in a snapshot;
    `find --user` reads the journal and shows it, with when it was captured."""
    from backup_cfn.engine.capture import capture_batch

    from capture_support import CAPTURE, delete_event, put_event, record

    engine.clock.set(datetime.now(timezone.utc).replace(microsecond=0))   # S3's events carry real time
    put(engine, "dee", "plan.pdf", b"plan, night one")
    night = backup(engine)["run_id"]
    noon = engine.clock() + timedelta(hours=10)
    events = [put_event(engine, "dee", "draft.pdf", b"a draft", noon),
              put_event(engine, "dee", "plan.pdf", b"plan, revised at noon", noon + timedelta(minutes=1)),
              delete_event(engine, "dee", "draft.pdf", noon + timedelta(hours=3))]
    engine.clock.set(noon + timedelta(hours=3, minutes=1))
    capture_batch(engine.as_role(CAPTURE), engine.settings, [record(e) for e in events])
    found = find(target_of(engine), "*.pdf", user="dee")
    by_content = {v["sha256"]: v for v in found["versions"]}
    draft, revised, first = (by_content[sha(b"a draft")], by_content[sha(b"plan, revised at noon")],
                             by_content[sha(b"plan, night one")])
    assert (draft["snapshots"], draft["first_run"], draft["first_captured"], draft["state"]) == (
        0, None, naming.iso(noon), DELETED)
    assert (revised["snapshots"], revised["state"]) == (0, CURRENT)      # current: the journal after the run
    assert (first["first_run"], first["last_captured"], first["state"]) == (night, None, CHANGED)
    assert [v["sha256"] for v in found["versions"]] == [   # last seen newest first
        sha(b"plan, revised at noon"), sha(b"a draft"), sha(b"plan, night one")]
    assert found["journal_segments_read"] == 1
    # Without --user only the snapshots are searched: the draft is not there.
    assert sha(b"a draft") not in {v["sha256"] for v in find(target_of(engine), "draft.pdf")["versions"]}
