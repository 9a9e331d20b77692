"""`backup-cfn restore` of many users at once (`--user` repeated, `--all-users`), the
disaster-recovery path: on the emulator, through the CLI. Users restored in parallel, each to its
own folder or prefix, every file byte-identical to the source and its SHA-256 checked; a user that
fails does not stop the others (exit 1, the user named); `--all-users --from-replica`, at a point
in time; `--json`; and the bad inputs as one line."""
from __future__ import annotations

import hashlib
import threading

import pytest
from click.testing import CliRunner

import cli
from backup_cfn import aws, contract
from backup_cfn.engine import naming
from backup_cfn.engine.manifest import SnapshotRef
from backup_cfn.engine.restore import RestoreReport, every_users_snapshot, restore_users
from backup_cfn.local import server
from backup_cfn.ops import restore as ops_restore
from backup_cfn.ops.target import DeployedEnvironment

from engine_support import backup, make_engine, put, source_state
from test_json_output import check_document

SHARED = b"%PDF standard terms, every user holds them" * 50
FILES = {
    "ann": {"reports/q1.pdf": b"ann q1" * 300, "reports/2026/q2.xlsx": b"ann q2", "terms.pdf": SHARED},
    "ben": {"reports/q1.pdf": b"ben q1" * 700, "notes/empty.txt": b"", "terms.pdf": SHARED},
    "cy": {"a/b/c/deep.csv": b"cy,deep\n" * 90, "terms.pdf": SHARED},
    "dee": {"only.pdf": b"dee only"},
}


@pytest.fixture
def engine(local_env, monkeypatch):
    engine = make_engine(local_env)
    for user, files in FILES.items():
        for path, data in files.items():
            put(engine, user, path, data)
    assert backup(engine)["status"] == "SUCCEEDED"
    monkeypatch.setattr(ops_restore, "connect", lambda env: DeployedEnvironment(env, engine.clients, engine.settings,
                                                                                engine.outputs))
    return engine


def restore_cli(environments, *args):
    return CliRunner().invoke(cli.cli, ["--environments", str(environments), "restore", "--env", "local", *args],
                              obj={}, env={"COLUMNS": "250"})


def error_line(result) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def tree(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_restored(root, engine, users) -> None:
    """Each user's folder holds exactly the user's source files, byte for byte and by SHA-256."""
    assert sorted(p.name for p in root.iterdir()) == sorted(users)
    for user in users:
        source = source_state(engine, user)
        restored = tree(root / user)
        assert restored == source
        assert ({p: hashlib.sha256(d).hexdigest() for p, d in restored.items()}
                == {p: hashlib.sha256(d).hexdigest() for p, d in source.items()})


def test_named_users_are_restored_each_to_its_own_folder_byte_identical(engine, environments, tmp_path):
    result = restore_cli(environments, "--user", "ann", "--user", "ben", "--user", "cy", "--user", "ann",
                         "--to", str(tmp_path / "dr"))
    assert result.exit_code == 0, result.output
    assert_restored(tmp_path / "dr", engine, ["ann", "ben", "cy"])     # dee not asked; ann once
    assert "users restored" in result.output and "3 of 3" in result.output
    assert "every restored file's SHA-256 checked" in result.output
    files = sum(len(FILES[u]) for u in ("ann", "ben", "cy"))
    assert any(line.split() == ["files", str(files)] for line in result.output.replace("│", " ").splitlines())


def test_users_are_restored_in_parallel_on_a_bounded_pool(engine):
    """Each user's restore waits for the two others to start: only a pool running them together passes."""
    arrived = threading.Barrier(3, timeout=20)
    running, most = [0], [0]
    lock = threading.Lock()

    class Waiting:
        def for_user(self, user):
            return self

        def restore(self, s3, bucket, manifest, **options):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            if manifest.user != "dee":
                arrived.wait()
            with lock:
                running[0] -= 1
            return RestoreReport(manifest.user, manifest.run_id, files=len(manifest.entries))

    snapshots, missing = every_users_snapshot(engine.s3, engine.settings.backup_bucket)
    assert [s.user for s in snapshots] == ["ann", "ben", "cy", "dee"] and missing == {}
    reports = restore_users(engine.s3, engine.settings.backup_bucket, snapshots, Waiting(), users_at_once=3)
    assert [(r.user, r.files, r.ok) for r in reports] == [(u, len(FILES[u]), True) for u in FILES]
    assert most[0] == 3


def test_a_user_that_fails_does_not_stop_the_others(engine, environments, tmp_path):
    # ben's own report is gone from the store (content deleted, every version of it: a delete marker
    # alone is read through): ben fails, ann, cy and dee do not.
    bucket = engine.settings.backup_bucket
    key = naming.content_key(hashlib.sha256(FILES["ben"]["reports/q1.pdf"]).hexdigest())
    for version in engine.s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
        engine.s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    result = restore_cli(environments, "--all-users", "--to", str(tmp_path / "dr"))
    assert error_line(result) == "Error: 1 of 4 user(s) not restored: ben"
    assert "users not restored" in result.output and "reports/q1.pdf: content" in result.output
    restored = tmp_path / "dr"
    for user in ("ann", "cy", "dee"):
        assert tree(restored / user) == source_state(engine, user)
    # ben's other files are restored; the missing one is not, and no partial file is left.
    assert tree(restored / "ben") == {p: d for p, d in FILES["ben"].items() if p != "reports/q1.pdf"}


def test_every_user_from_the_replica_alone_to_s3_and_at_a_point_in_time(engine, environments, tmp_path, monkeypatch):
    first_run = naming.run_id_for(engine.clock())
    engine.clock.advance(days=1)
    put(engine, "ann", "reports/q1.pdf", b"ann q1 revised")
    put(engine, "eve", "new.pdf", b"eve joined on day 2")
    assert backup(engine)["status"] == "SUCCEEDED"

    # The replica, as the emulator's S3 replication fills it; the primary bucket is then out of reach.
    env = engine.env
    assert server.wait_for_replication(env.endpoint_url)["failed"] == 0
    replica = engine.outputs[contract.OUTPUT_REPLICA_BUCKET]
    replica_s3 = aws.client(env, "s3", env.replica_region)
    monkeypatch.setattr(ops_restore, "replica_target", lambda env: (replica_s3, replica))
    monkeypatch.setattr(ops_restore, "connect", lambda env: pytest.fail("the replica path reads the primary"))

    landing = f"{engine.settings.source_bucket}-dr"
    engine.s3.create_bucket(Bucket=landing)
    # Many users into S3 are otherwise the stack's to restore (test_restore_service.py); from this
    # machine, any bucket.
    result = restore_cli(environments, "--all-users", "--from-replica", "--on-this-machine", "--to", f"s3://{landing}/dr")
    assert result.exit_code == 0, result.output
    assert "5 of 5" in result.output
    for user in ("ann", "ben", "cy", "dee", "eve"):
        for path, data in source_state(engine, user).items():
            assert engine.s3.get_object(Bucket=landing, Key=f"dr/{user}/{path}")["Body"].read() == data

    # At the first run: eve had no snapshot yet (skipped, said so), ann's report as it was then.
    result = restore_cli(environments, "--all-users", "--from-replica", "--run", first_run, "--to", str(tmp_path / "t"))
    assert result.exit_code == 0, result.output
    assert f"skipped eve: no backup at or before {first_run}" in result.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["ann", "ben", "cy", "dee"]
    assert (tmp_path / "t" / "ann" / "reports" / "q1.pdf").read_bytes() == FILES["ann"]["reports/q1.pdf"]


def test_json_is_the_documented_restore_document(engine, environments, tmp_path):
    result = CliRunner().invoke(cli.cli, ["--environments", str(environments), "restore", "--env", "local",
                                          "--user", "ann", "--user", "dee", "--to", str(tmp_path / "j"), "--json"],
                                obj={}, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    document = check_document(result.stdout, "backup-cfn/restore")
    assert [(u["user"], u["ok"], u["files"]) for u in document["users"]] == [("ann", True, 3), ("dee", True, 1)]
    assert document["users_restored"] == 2 and document["files"] == 4 and document["skipped"] == []
    assert document["bytes"] == sum(len(d) for u in ("ann", "dee") for d in FILES[u].values())
    # One user with --json: to the target itself, as without it.
    single = CliRunner().invoke(cli.cli, ["--environments", str(environments), "restore", "--env", "local",
                                          "--user", "dee", "--to", str(tmp_path / "one"), "--json"], obj={})
    assert single.exit_code == 0, single.output
    assert check_document(single.stdout, "backup-cfn/restore")["users"][0]["to"] == str(tmp_path / "one")
    assert tree(tmp_path / "one") == FILES["dee"]


@pytest.mark.parametrize("args, message", [
    (["--user", "ann", "--all-users"], "give --user or --all-users, not both"),
    ([], "give --user (repeat it for several users) or --all-users"),
    (["--all-users", "--run", "20260101T000000Z", "--at", "2026-01-01"], "give --run or --at, not both"),
    (["--user", "ann", "--user", "a/b"], "not a user name: 'a/b'"),
])
def test_bad_selections_are_one_line(engine, environments, tmp_path, args, message):
    result = restore_cli(environments, *args, "--to", str(tmp_path / "x"))
    assert error_line(result) == f"Error: {message}"
    assert not (tmp_path / "x").exists()


def test_unknown_users_among_many_are_named_and_nothing_is_restored(engine, environments, tmp_path):
    bucket = engine.settings.backup_bucket
    result = restore_cli(environments, "--user", "ann", "--user", "nobody", "--user", "nemo", "--to", str(tmp_path / "x"))
    assert error_line(result) == (f"Error: no backups of user 'nemo' in s3://{bucket}; "
                                  f"no backups of user 'nobody' in s3://{bucket}")
    assert not (tmp_path / "x").exists()
    early = restore_cli(environments, "--user", "ann", "--user", "ben", "--at", "2001-01-01", "--to", str(tmp_path / "x"))
    assert "user 'ann' has no backup at or before 2001-01-01T23:59:59Z" in error_line(early)


def test_all_users_of_an_empty_bucket_is_one_line(local_env, environments, tmp_path, monkeypatch):
    engine = make_engine(local_env)
    monkeypatch.setattr(ops_restore, "connect", lambda env: DeployedEnvironment(env, engine.clients, engine.settings,
                                                                                engine.outputs))
    result = restore_cli(environments, "--all-users", "--to", str(tmp_path / "x"))
    assert error_line(result) == f"Error: no backups in s3://{engine.settings.backup_bucket}"


def test_snapshot_choice_for_every_user_is_the_newest_at_or_before_the_point():
    class Listing:
        def get_paginator(self, name):
            return self

        def paginate(self, **kwargs):
            keys = [naming.manifest_key(u, r) for u, r in (("a", "20260101T020000Z"), ("a", "20260102T020000Z"),
                                                             ("b", "20260103T020000Z"))]
            return [{"Contents": [{"Key": k, "ETag": "e", "Size": 1} for k in keys]}]

    chosen, missing = every_users_snapshot(Listing(), "bkt", limit="20260102T120000Z")
    assert [(s.user, s.run_id) for s in chosen] == [("a", "20260102T020000Z")]
    assert missing == {"b": "no backup at or before 20260102T120000Z (oldest: 20260103T020000Z)"}
    assert [s.run_id for s in every_users_snapshot(Listing(), "bkt")[0]] == ["20260102T020000Z", "20260103T020000Z"]
    assert isinstance(chosen[0], SnapshotRef)
