"""The operator's day, from a shell on the deployed local environment: find a deleted file by name,
compare two runs, restore just that file, run a drill (and see one fail); each command's errors as
one line; tables that never cut an identifier off a terminal; and the two bad inputs of issue 13
(`run --users ''`, `local start --port 70000`)."""
from __future__ import annotations

import io
import re

import pytest
from click.testing import CliRunner
from rich.console import Console

import cli
from backup_cfn.engine import naming
from backup_cfn.engine.manifest import read_manifest
from backup_cfn.errors import UserError
from backup_cfn.local import server
from backup_cfn.ops.runs import print_runs
from backup_cfn.ops.target import connect

from test_engine_cli import one_line_error

DELETED = "reports/2026/report-01.pdf"


def invoke(environments, *args, columns: str = "250"):
    return CliRunner().invoke(cli.cli, ["--environments", str(environments), *args], obj={},
                              catch_exceptions=False, env={"COLUMNS": columns})


def test_find_a_deleted_file_compare_restore_it_and_drill(environments, local_env, tmp_path):
    assert invoke(environments, "deploy", "--env", "local", "--yes").exit_code == 0
    assert invoke(environments, "demo-data", "--env", "local", "--users", "4", "--day", "1").exit_code == 0
    target = connect(local_env)
    s3, source, bucket = target.clients.s3, target.settings.source_bucket, target.settings.backup_bucket
    original = s3.get_object(Bucket=source, Key=f"client-0002/{DELETED}")["Body"].read()
    assert invoke(environments, "run", "--env", "local").exit_code == 0
    first = target.clients.s3.list_objects_v2(Bucket=bucket, Prefix="manifests/client-0002/")["Contents"][0]["Key"]
    first_run = naming.parse_manifest_key(first)[1]
    s3.delete_object(Bucket=source, Key=f"client-0002/{DELETED}")
    import time
    time.sleep(1)
    assert invoke(environments, "run", "--env", "local").exit_code == 0
    second_run = max(naming.parse_manifest_key(o["Key"])[1] for o in s3.list_objects_v2(
        Bucket=bucket, Prefix="manifests/client-0002/")["Contents"])

    found = invoke(environments, "find", "--env", "local", "report-01.pdf")
    assert found.exit_code == 0, found.output
    [line] = [row for row in found.output.splitlines() if row.startswith("client-0002")]
    assert re.search(rf"client-0002\s+{DELETED}\s+deleted \(not in {second_run}\)\s+{first_run}\s+{first_run}\s+1\s", line)
    assert re.search(r"version\(s\) of \d+ path\(s\) in 8 of 8 snapshot\(s\): 8 read, 9 S3 request\(s\)", found.output)
    nothing = invoke(environments, "find", "--env", "local", "*.docx")
    assert nothing.exit_code == 0 and "no match: none of 8 snapshot(s) holds a file matching '*.docx'" in nothing.output

    compared = invoke(environments, "compare", "--env", "local", "--user", "client-0002", first_run, second_run)
    assert compared.exit_code == 0, compared.output
    assert f"-  {DELETED}  (" in compared.output and re.search(r"removed 1 \([\d.]+ KB\)", compared.output)

    listed = invoke(environments, "ls", "--env", "local", "--user", "client-0002", "--run", first_run, "--path", DELETED)
    assert listed.exit_code == 0 and listed.output.strip().endswith(DELETED)
    restored = invoke(environments, "restore", "--env", "local", "--user", "client-0002", "--run", first_run,
                      "--path", DELETED, "--to", str(tmp_path / "back"))
    assert restored.exit_code == 0, restored.output
    assert [p.relative_to(tmp_path / "back").as_posix() for p in (tmp_path / "back").rglob("*") if p.is_file()] == [DELETED]
    assert (tmp_path / "back" / DELETED).read_bytes() == original

    drilled = invoke(environments, "drill", "--env", "local", "--users", "4")
    assert drilled.exit_code == 0 and "PASSED" in drilled.output and "problems" in drilled.output

    # A damaged content object: the drill says which file, exits 1, and `runs` shows the failed drill.
    manifest = read_manifest(s3, bucket, naming.manifest_key("client-0003", second_run))
    damaged = sorted(manifest.entries.items())[0]
    s3.put_object(Bucket=bucket, Key=naming.content_key(damaged[1].sha256), Body=b"not what was backed up")
    time.sleep(1)
    failed = invoke(environments, "drill", "--env", "local", "--users", "4")
    assert f"client-0003@{second_run}:{damaged[0]}" in failed.output
    assert re.match(r"Error: restore drill \d{8}T\d{6}Z failed: 1 problem\(s\)", one_line_error(failed))
    listing = invoke(environments, "runs", "--env", "local")
    assert "restore drills" in listing.output and "FAILED" in listing.output and "PASSED" in listing.output

    rules = invoke(environments, "prune", "--env", "local", "--dry-run")
    assert rules.exit_code == 0 and "every snapshot of the last 60 days" in rules.output
    assert re.search(r"expired\s+│ kept by no rule: would be deleted\s+│\s+0", rules.output)

    # Each command's errors: one line, exit 1.
    assert "no backups of user 'nobody'" in one_line_error(invoke(environments, "ls", "--env", "local", "--user", "nobody"))
    assert "has no backup from run 20200101T000000Z" in one_line_error(
        invoke(environments, "ls", "--env", "local", "--user", "client-0001", "--run", "20200101T000000Z"))
    assert "give --run or --at, not both" in one_line_error(
        invoke(environments, "ls", "--env", "local", "--user", "client-0001", "--run", first_run, "--at", "2026-01-01"))
    assert "holds no file under 'nothing/'" in one_line_error(
        invoke(environments, "ls", "--env", "local", "--user", "client-0001", "--path", "nothing/"))
    assert "is not a run ID" in one_line_error(
        invoke(environments, "compare", "--env", "local", "--user", "client-0001", "latest", second_run))
    assert "needs two different runs" in one_line_error(
        invoke(environments, "compare", "--env", "local", "--user", "client-0001", second_run, second_run))
    assert "no backups of user 'nobody'" in one_line_error(
        invoke(environments, "compare", "--env", "local", "--user", "nobody", first_run, second_run))
    assert "no backups of user 'nobody'" in one_line_error(
        invoke(environments, "find", "--env", "local", "*.pdf", "--user", "nobody"))
    assert "--since 'last week' is not a date" in one_line_error(
        invoke(environments, "find", "--env", "local", "*.pdf", "--since", "last week"))
    assert "--users must be between 1 and 1000, got 0" in one_line_error(
        invoke(environments, "drill", "--env", "local", "--users", "0"))
    assert "no run or drill 20200101T000000Z" in one_line_error(
        invoke(environments, "runs", "--env", "local", "--run", "20200101T000000Z"))


def test_off_a_terminal_tables_never_cut_an_identifier():
    body = {"stack": "backup-cfn-local", "drills": [], "runs": [
        {"run_id": f"2026112{i}T020000Z", "status": "SUCCEEDED", "users_done": 1000, "users_total": 1000,
         "users_failed": 0, "users_skipped": 0, "bytes_scanned": 10**9, "bytes_read": 10**7, "bytes_new": 10**6,
         "completed_at": f"2026-11-2{i}T02:04:11Z"} for i in range(3)]}
    out = io.StringIO()
    narrow = Console(file=out, width=40, force_terminal=False)
    print_runs(narrow, "runs", body)
    rows = [line for line in out.getvalue().splitlines() if "SUCCEEDED" in line]
    assert len(rows) == 3
    for i, row in enumerate(rows):
        assert f"2026112{i}T020000Z" in row and f"2026-11-2{i}T02:04:11Z" in row and "1000/1000" in row
    assert "…" not in out.getvalue()
    # The same table on a terminal of that width is cut (what piped output used to look like).
    terminal = io.StringIO()
    print_runs(Console(file=terminal, width=40, force_terminal=True), "runs", body)
    assert "2026112" in terminal.getvalue() and "20261120T020000Z" not in terminal.getvalue()


def test_the_cli_pipes_whole_run_ids_at_80_columns(environments, local_env):
    assert invoke(environments, "deploy", "--env", "local", "--yes").exit_code == 0
    assert invoke(environments, "demo-data", "--env", "local", "--users", "1").exit_code == 0
    done = invoke(environments, "run", "--env", "local", columns="80")
    run_id = re.search(r"run (\d{8}T\d{6}Z): SUCCEEDED", done.output).group(1)
    listed = invoke(environments, "runs", "--env", "local", columns="80")
    assert re.search(rf"│ {run_id} │ SUCCEEDED │", listed.output), listed.output


@pytest.mark.parametrize("value", ["", " ", ",", " , "])
def test_an_empty_users_list_is_an_error_not_every_user(environments, value):
    # Refused before any AWS call: nothing is even deployed here.
    line = one_line_error(invoke(environments, "run", "--env", "local", "--users", value))
    assert line == (f"Error: --users {value!r} names no user: give U1,U2,... or leave --users out to back up "
                    "every user")


@pytest.mark.parametrize("port", ["70000", "0", "-1", "65536"])
def test_a_port_outside_1_to_65535_is_refused_and_nothing_starts(port, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "STATE_DIR", tmp_path)
    result = CliRunner().invoke(cli.cli, ["local", "start", "--port", port], obj={})
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535" in result.output
    assert "started" not in result.output and list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match=r"--port 70000 is not a TCP port \(1 to 65535\)"):
        server.start(70000)
