"""--json on every reading command, on a deployed local environment: stdout is exactly one JSON
document, of the documented schema and version, with exactly the keys docs/json.md lists (parsed
from its tables); and errors stay one line on stderr with nothing on stdout."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from backup_cfn.ops.target import connect

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"


def documented() -> dict[str, set[str]]:
    """schema name -> the key paths its section's table lists (`a.b`, `a[]`, `a{}`)."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^## (backup-cfn/[a-z-]+)$", line)
        if heading:
            current = sections.setdefault(heading.group(1), set())
        elif current is not None and line.startswith("| `"):
            first_cell = line.split("|")[1]
            current.update(re.findall(r"`([^`]+)`", first_cell))
    return sections


def key_paths(value: dict, known: set[str], prefix: str = "") -> tuple[set[str], set[str]]:
    """(paths present, container paths that held something), in the documentation's notation."""
    present, filled = set(), set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        if f"{path}{{}}" in known:            # an object whose keys are data
            present.add(f"{path}{{}}")
        elif isinstance(item, dict):
            present.add(path)
            filled.add(path)
            inner, inner_filled = key_paths(item, known, f"{path}.")
            present |= inner
            filled |= inner_filled
        elif isinstance(item, list) and f"{path}[]" in known:
            present.add(f"{path}[]")
            for element in item:
                filled.add(f"{path}[]")
                inner, inner_filled = key_paths(element, known, f"{path}[].")
                present |= inner
                filled |= inner_filled
        else:
            present.add(path)
    return present, filled


def check_document(output: str, schema: str) -> dict:
    document = json.loads(output)          # the whole of stdout: nothing else may be printed
    assert (document["schema"], document["version"]) == (schema, 1)
    known = documented()[schema]
    present, filled = key_paths(document, known)
    assert present - known == set(), f"{schema}: keys not in docs/json.md"

    def parent(path: str) -> str:
        head = re.sub(r"(\[\]|\{\})$", "", path)
        return head.rsplit(".", 1)[0] if "." in head else ""
    missing = {p for p in known - present if parent(p) == "" or parent(p) in filled}
    assert missing == set(), f"{schema}: documented keys missing from the output"
    return document


def invoke(environments, *args):
    return CliRunner().invoke(cli.cli, ["--environments", str(environments), *args], obj={},
                              catch_exceptions=False, env={"COLUMNS": "80"})


def test_every_schema_in_the_doc_is_checked_here():
    assert set(documented()) == {"backup-cfn/runs", "backup-cfn/run", "backup-cfn/drill", "backup-cfn/user-runs",
                                 "backup-cfn/ls", "backup-cfn/find", "backup-cfn/compare", "backup-cfn/verify",
                                 "backup-cfn/cost", "backup-cfn/status", "backup-cfn/restore"}


def test_cost_json_is_the_documented_document():
    result = invoke(Path(cli.__file__).parent / "environments.toml", "cost", "--env", "prod", "--json")
    assert result.exit_code == 0, result.output
    document = check_document(result.stdout, "backup-cfn/cost")
    assert [s["name"] for s in document["scenarios"]] == ["this design", "reference lifecycle", "AWS Backup for S3"]
    assert document["scenarios"][0]["total_usd"] == pytest.approx(sum(
        i["usd"] for i in document["scenarios"][0]["items"] if i["in_total"]), abs=0.01)


def test_every_reading_command_prints_its_documented_document(environments, local_env):
    assert invoke(environments, "deploy", "--env", "local", "--yes").exit_code == 0
    assert invoke(environments, "demo-data", "--env", "local", "--users", "3", "--day", "1").exit_code == 0
    target = connect(local_env)
    s3, source = target.clients.s3, target.settings.source_bucket
    s3.put_object(Bucket=source, Key="client-0001/empty-folder/", Body=b"")       # a recorded skip for ls

    first = invoke(environments, "run", "--env", "local", "--json")
    assert first.exit_code == 0, first.output
    run = check_document(first.stdout, "backup-cfn/run")["run"]
    assert run["status"] == "SUCCEEDED" and first.stderr       # the progress went to stderr
    s3.put_object(Bucket=source, Key="client-0001/reports/2026/report-00.pdf", Body=b"%PDF-1.7 revised")
    import time
    time.sleep(1)                                                 # run IDs are to the second
    second = check_document(invoke(environments, "run", "--env", "local", "--json").stdout, "backup-cfn/run")["run"]

    time.sleep(1)                                                 # a drill's ID is its start, to the second
    drill = invoke(environments, "drill", "--env", "local", "--users", "2", "--json")
    assert drill.exit_code == 0, drill.output
    assert check_document(drill.stdout, "backup-cfn/drill")["drill"]["result"] == "PASSED"

    runs = check_document(invoke(environments, "runs", "--env", "local", "--json").stdout, "backup-cfn/runs")
    assert [r["run_id"] for r in runs["runs"]] == [second["run_id"], run["run_id"]] and len(runs["drills"]) == 1
    one = check_document(invoke(environments, "runs", "--env", "local", "--run", run["run_id"], "--json").stdout,
                         "backup-cfn/run")
    assert one["measured"] is None and one["run"] == {**run, "users_pending": 0}
    by_drill = invoke(environments, "runs", "--env", "local", "--run", runs["drills"][0]["drill_id"], "--json")
    check_document(by_drill.stdout, "backup-cfn/drill")
    history = invoke(environments, "runs", "--env", "local", "--user", "client-0001", "--json")
    assert len(check_document(history.stdout, "backup-cfn/user-runs")["jobs"]) == 2

    listing = check_document(invoke(environments, "ls", "--env", "local", "--user", "client-0001", "--json").stdout,
                             "backup-cfn/ls")
    assert listing["skipped"] == [{"path": "empty-folder/", "reason": "folder marker (no content)"}]
    found = check_document(invoke(environments, "find", "--env", "local", "report-00.pdf", "--json").stdout,
                           "backup-cfn/find")
    assert {v["state"] for v in found["versions"]} == {"current", "changed"}
    diff = check_document(invoke(environments, "compare", "--env", "local", "--user", "client-0001", run["run_id"],
                                 second["run_id"], "--json").stdout, "backup-cfn/compare")
    assert [c["kind"] for c in diff["changes"]] == ["modified"]
    checked = check_document(invoke(environments, "verify", "--env", "local", "--json").stdout, "backup-cfn/verify")
    assert checked["ok"] is True
    status = check_document(invoke(environments, "status", "--env", "local", "--json").stdout, "backup-cfn/status")
    assert [s["label"] for s in status["stacks"]] == ["replica", "primary"] and status["stacks"][1]["deployed"]

    # Errors: one line on stderr, nothing on stdout.
    missing = invoke(environments, "ls", "--env", "local", "--user", "nobody", "--json")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [f"Error: no backups of user 'nobody' in s3://{target.settings.backup_bucket}"]
