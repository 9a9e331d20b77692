"""The operator commands as run from a shell, on the `local` environment deployed by `deploy`:
demo-data, run, runs, restore, verify, prune; and their errors as one line with exit 1."""
from __future__ import annotations

import re

from backup_cfn.local import server
from backup_cfn.ops.target import connect as deployed

from cli_support import one_line_error, run


def test_operating_backups_on_the_deployed_local_environment(environments, local_env, tmp_path):
    assert run(environments, "deploy", "--env", "local", "--yes").exit_code == 0

    generated = run(environments, "demo-data", "--env", "local", "--users", "6", "--day", "1")
    assert generated.exit_code == 0, generated.output
    assert re.search(r"now holds day 1: 6 users, \d+ files", generated.output)

    first = run(environments, "run", "--env", "local")
    assert first.exit_code == 0, first.output
    assert "SUCCEEDED" in first.output and "6 of 6" in first.output
    assert re.search(r"S3 requests\W+\d+", first.output)

    recent = run(environments, "runs", "--env", "local")
    assert recent.exit_code == 0 and "SUCCEEDED" in recent.output and "6/6" in recent.output
    history = run(environments, "runs", "--env", "local", "--user", "client-0001")
    assert history.exit_code == 0 and "COMPLETED" in history.output

    target = tmp_path / "restored"
    restored = run(environments, "restore", "--env", "local", "--user", "client-0001", "--to", str(target))
    assert restored.exit_code == 0, restored.output
    assert "every SHA-256 checked" in restored.output
    engine = deployed(local_env)
    source = engine.clients.s3.list_objects_v2(Bucket=engine.settings.source_bucket, Prefix="client-0001/")
    for obj in source["Contents"]:
        data = engine.clients.s3.get_object(Bucket=engine.settings.source_bucket, Key=obj["Key"])["Body"].read()
        assert (target / obj["Key"].removeprefix("client-0001/")).read_bytes() == data

    checked = run(environments, "verify", "--env", "local", "--sample", "100")
    assert checked.exit_code == 0 and "verify: no problems" in checked.output
    pruned = run(environments, "prune", "--env", "local", "--dry-run")
    assert pruned.exit_code == 0 and "0 expired (would delete)" in pruned.output

    assert "no backups of user 'nobody'" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "nobody", "--to", str(tmp_path / "x")))
    assert "is not a run ID" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "client-0001", "--run", "latest", "--to", "d"))
    assert "has no backup from run 20200101T000000Z" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "client-0001", "--run", "20200101T000000Z",
            "--to", str(tmp_path / "y")))
    assert "no backup at or before" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "client-0001", "--at", "2001-01-01", "--to", "d"))
    assert "is not a date" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "client-0001", "--at", "soon", "--to", "d"))
    # The deployed stack replicates the backup bucket to the replica region (asynchronously, as S3
    # does): once the emulator has caught up, the replica alone restores the same bytes.
    assert server.wait_for_replication(local_env.endpoint_url)["failed"] == 0
    from_replica = tmp_path / "from-replica"
    restored = run(environments, "restore", "--env", "local", "--user", "client-0001", "--from-replica",
                   "--to", str(from_replica))
    assert restored.exit_code == 0, restored.output
    assert {p.relative_to(from_replica): p.read_bytes() for p in from_replica.rglob("*") if p.is_file()} == {
        p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert "no backups of user 'nobody'" in one_line_error(
        run(environments, "restore", "--env", "local", "--user", "nobody", "--from-replica", "--to", "d"))
    assert "not a user name" in one_line_error(run(environments, "run", "--env", "local", "--users", "a/b"))
    assert "--sample must be between 0 and 100" in one_line_error(
        run(environments, "verify", "--env", "local", "--sample", "150"))

    # A damaged backup makes verify fail, naming the problem.
    content = engine.clients.s3.list_objects_v2(Bucket=engine.settings.backup_bucket, Prefix="content/")["Contents"][0]
    engine.clients.s3.delete_object(Bucket=engine.settings.backup_bucket, Key=content["Key"])
    damaged = run(environments, "verify", "--env", "local")
    assert "is missing" in damaged.output
    assert "verify found" in one_line_error(damaged)


def test_commands_before_deploy_say_to_deploy(environments):
    for args in (["run"], ["runs"], ["verify"], ["prune"], ["restore", "--user", "u", "--to", "d"]):
        line = one_line_error(run(environments, *args, "--env", "local"))
        assert "backup-cfn deploy --env local" in line, (args, line)


def test_run_timeout_must_be_a_positive_number_of_seconds(environments):
    result = run(environments, "run", "--env", "local", "--timeout", "0")
    assert result.exit_code == 2 and "Invalid value for '--timeout': 0 is not in the range x>=1." in result.output
