"""Restore drills on the emulator, through the drill handler: a healthy backup passes; a corrupted,
truncated or missing content object fails the drill, naming the file; every drill is recorded in
the runs table; the handler publishes the metric the template's alarm watches."""
from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timezone

import pytest
from botocore.response import StreamingBody

import cli
from backup_cfn import aws, contract
from backup_cfn.config import load_environment
from backup_cfn.engine import drill, naming
from backup_cfn.engine.errors import InvalidJob
from backup_cfn.engine.manifest import read_manifest
from backup_cfn.errors import UserError
from backup_cfn.ops.drill import drill_event, drill_on_aws
from backup_cfn.ops.runs import drill_json
from backup_cfn.ops.target import DeployedEnvironment
from handlers import drill as drill_handler, runtime

from engine_support import backup, context, make_engine, put, sha
from template_helpers import primary, props

FILES = {f"reports/r{i}.pdf": f"%PDF-1.7 report {i} ".encode() * (100 + i) for i in range(4)}


@pytest.fixture
def engine(local_env):
    engine = make_engine(local_env)
    for user in ("ann", "ben", "cy"):
        for path, data in FILES.items():
            put(engine, user, path, data + user.encode())
    backup(engine)
    runtime.configure(engine.clients, engine.settings)
    return engine


def scheduled(moment: str = "2026-11-29T08:00:00Z") -> dict:
    return {"version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events", "time": moment,
            "detail": {}}


def test_a_healthy_backup_passes_and_the_drill_is_recorded(engine):
    result = drill_handler.handler(scheduled(), context("drill"))
    assert result["result"] == drill.PASSED and result["problems"] == []
    assert (result["users_sampled"], result["files"], result["contents"]) == (3, 12, 12)
    assert result["bytes"] == sum(len(data + user.encode()) for data in FILES.values() for user in ("ann", "ben", "cy"))
    record = drill.get_drill(engine.clients.dynamodb, engine.settings, "20261129T080000Z")
    assert record["status"] == drill.DRILL_PASSED and record["trigger"] == "schedule"
    assert drill_json(record)["snapshots"] == [f"{u}@{naming.run_id_for(engine.clock())}" for u in ("ann", "ben", "cy")]
    [recent] = drill.recent_drills(engine.clients.dynamodb, engine.settings)
    assert recent[contract.RUNS_PARTITION_KEY] == "20261129T080000Z"
    # The drill's record is not a run: `runs` lists it apart.
    from backup_cfn.engine import runs
    assert [r["run_id"] for r in runs.recent_runs(engine.clients.dynamodb, engine.settings)] == \
        [naming.run_id_for(engine.clock())]


def test_a_sample_is_that_many_users_newest_snapshots(engine):
    engine.clock.advance(days=1)
    put(engine, "ann", "reports/new.pdf", b"%PDF new")
    newest = backup(engine)["run_id"]
    report = drill.run_drill(engine.clients, engine.settings, drill_id="20261201T080000Z", users=2, seed=1)
    assert len(report.snapshots) == 2 and all(s.endswith("@" + newest) for s in report.snapshots)
    everyone = drill.run_drill(engine.clients, engine.settings, drill_id="20261201T080001Z", users=50)
    assert len(everyone.snapshots) == 3 and everyone.files == 13


@pytest.mark.parametrize("damage, expected", [
    ("corrupt", "hashes to"),
    ("truncate", "bytes, the snapshot says"),
    ("delete", "unreadable: NoSuchKey"),
])
def test_a_damaged_content_object_fails_the_drill_naming_the_file(engine, damage, expected):
    bucket = engine.settings.backup_bucket
    manifest = read_manifest(engine.s3, bucket, naming.manifest_key("ben", naming.run_id_for(engine.clock())))
    entry = manifest.entries["reports/r2.pdf"]
    key = naming.content_key(entry.sha256)
    data = engine.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if damage == "corrupt":
        engine.s3.put_object(Bucket=bucket, Key=key, Body=bytes([data[0] ^ 1]) + data[1:])
    elif damage == "truncate":
        engine.s3.put_object(Bucket=bucket, Key=key, Body=data[:-1])
    else:
        engine.s3.delete_object(Bucket=bucket, Key=key)
    result = drill_handler.handler(scheduled(), context("drill"))
    assert result["result"] == drill.FAILED and result["problems_total"] == 1
    [problem] = result["problems"]
    assert problem.startswith(f"ben@{manifest.run_id}:reports/r2.pdf: content {entry.sha256[:16]}") and expected in problem
    record = drill.get_drill(engine.clients.dynamodb, engine.settings, "20261129T080000Z")
    assert record["status"] == drill.DRILL_FAILED and record["problems"] == [problem]


def test_nothing_to_drill_is_a_failed_drill(local_env):
    engine = make_engine(local_env)
    report = drill.run_drill(engine.clients, engine.settings, drill_id="20261129T080000Z")
    assert report.result == drill.FAILED and report.problems == [f"no snapshots in s3://{engine.settings.backup_bucket} to drill"]


@pytest.mark.parametrize("event", [[], "x", {"time": 7}, {"time": "yesterday"}, {"users": "3"}, {"users": True},
                                   {"users": 0}, {"users": 1001}])
def test_drill_events_of_the_wrong_shape_are_invalid_and_record_nothing(local_env, event):
    engine = make_engine(local_env)
    with pytest.raises(InvalidJob):
        drill.handle_drill_event(engine.clients, engine.settings, event)
    assert drill.recent_drills(engine.clients.dynamodb, engine.settings) == []


def test_the_drill_publishes_the_metric_the_alarm_watches(engine, capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    bucket = engine.settings.backup_bucket
    key = naming.content_key(sha(FILES["reports/r0.pdf"] + b"ann"))
    engine.s3.put_object(Bucket=bucket, Key=key, Body=b"damaged")
    capsys.readouterr()
    drill_handler.handler(scheduled(), context("drill"))
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    alarm = props(primary("dev"), "RestoreDrillFailedAlarm")
    assert directive["Namespace"] == alarm["Namespace"] == contract.METRIC_NAMESPACE
    assert directive["Dimensions"] == [[d["Name"] for d in alarm["Dimensions"]]]
    assert alarm["MetricName"] == contract.METRIC_DRILLS_FAILED
    assert emf[contract.METRIC_DRILLS_FAILED] in (1, [1]) and emf[contract.METRIC_DRILLS_PASSED] in (0, [0])
    assert emf[contract.METRIC_DIMENSION] == engine.settings.stack_name
    # The failed drill's value crosses the alarm's threshold.
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] <= 1


class DrillLambda:
    """Lambda's Invoke of the drill function: its handler in-process, as the service would run it."""

    def __init__(self, fail: bool = False):
        self.fail, self.calls = fail, []

    def invoke(self, FunctionName, Payload):
        self.calls.append((FunctionName, json.loads(Payload)))
        if self.fail:
            body = json.dumps({"errorMessage": "Task timed out after 900.00 seconds"}).encode()
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": StreamingBody(io.BytesIO(body), len(body))}
        body = json.dumps(drill_handler.handler(json.loads(Payload), context("drill"))).encode()
        return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}


@pytest.mark.parametrize("fail", [False, True])
def test_on_aws_the_cli_invokes_the_deployed_drill_function_once_and_waits(engine, monkeypatch, fail):
    env = dataclasses.replace(load_environment("dev"), endpoint_url="")
    target = DeployedEnvironment(env, engine.clients, engine.settings,
                                 {**engine.outputs, contract.OUTPUT_DRILL: "backup-cfn-dev-drill"})
    fake, asked = DrillLambda(fail), []
    monkeypatch.setattr(aws, "long_call_client",
                        lambda env, service, seconds: asked.append((service, seconds)) or fake)
    assert cli.drill_runner(env) is drill_on_aws
    event = drill_event(datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc), 2)
    if fail:
        with pytest.raises(UserError, match="the drill function failed: .*Task timed out"):
            drill_on_aws(target, event)
    else:
        result = drill_on_aws(target, event)
        assert (result["drill_id"], result["trigger"], result["users_sampled"]) == ("20261129T093000Z", "manual", 2)
    assert asked == [("lambda", contract.DRILL_TIMEOUT_SECONDS)]
    assert [(name, payload["source"], payload["users"]) for name, payload in fake.calls] == \
        [("backup-cfn-dev-drill", "backup-cfn.cli", 2)]


def test_the_invoke_waits_out_the_function_timeout_and_is_never_retried():
    client = aws.long_call_client(load_environment("dev"), "lambda", contract.DRILL_TIMEOUT_SECONDS)
    assert client.meta.config.read_timeout > contract.DRILL_TIMEOUT_SECONDS
    assert client.meta.config.retries["total_max_attempts"] == 1
