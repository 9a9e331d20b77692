"""`run` against AWS (the initiator invoked through Lambda, the run followed in the runs table),
with a Lambda stand-in that runs the real handlers in-process as the service would, and the
pruner handler's event shape."""
from __future__ import annotations

import dataclasses
import io
import json

import pytest
from botocore.response import StreamingBody
from rich.console import Console

from backup_cfn import aws, contract
from backup_cfn.config import load_environment
from backup_cfn.engine import runs
from backup_cfn.errors import UserError
from backup_cfn.local.runner import drain_queue, run_in_process
from backup_cfn.ops import run as run_module
from backup_cfn.ops.run import run_backup
from backup_cfn.ops.target import DeployedEnvironment
from handlers import pruner as pruner_handler, runtime

from engine_support import context, make_engine, put

DATA = b"%PDF-1.7 aws path " * 50


class InProcessLambda:
    """Lambda's asynchronous Invoke: accepted (202), then the initiator handler runs and the queue
    is drained through the worker handler, as the service would do after answering."""

    def __init__(self, engine, fail: bool = False):
        self.engine, self.fail, self.calls = engine, fail, []

    def invoke(self, FunctionName, InvocationType, Payload):
        self.calls.append((FunctionName, InvocationType))
        if not self.fail:
            from handlers import initiator
            runtime.configure(self.engine.clients, self.engine.settings)
            result = initiator.handler(json.loads(Payload), context("initiator"))
            drain_queue(self.engine.clients, self.engine.settings, run_id=result["run_id"], threads=2)
        return {"StatusCode": 202, "Payload": StreamingBody(io.BytesIO(b""), 0)}


@pytest.fixture
def aws_target(local_env, monkeypatch):
    engine = make_engine(local_env)
    env = dataclasses.replace(load_environment("dev"), endpoint_url="")
    outputs = {**engine.outputs, contract.OUTPUT_INITIATOR: "backup-cfn-dev-initiator"}
    return engine, DeployedEnvironment(env, engine.clients, engine.settings, outputs)


def test_run_on_aws_invokes_the_initiator_and_follows_the_runs_table(aws_target, monkeypatch):
    engine, target = aws_target
    put(engine, "mia", "a.pdf", DATA)
    fake = InProcessLambda(engine)
    monkeypatch.setattr(aws, "client", lambda env, service, region=None: fake)
    result = run_backup(target, runner=run_module.run_on_aws, console=Console(quiet=True))
    assert fake.calls == [("backup-cfn-dev-initiator", "Event")]
    assert result.record["status"] == runs.SUCCEEDED and result.record["users_done"] == 1
    assert result.s3_requests is None  # not counted on AWS: the requests are made by the functions


def test_an_initiator_that_never_records_the_run_is_one_line_at_the_deadline(aws_target, monkeypatch):
    """Invoked asynchronously, a failing initiator is retried by Lambda and then sent to the
    failed-invocation queue; `run` sees only that no run appears, and says so at its deadline."""
    engine, target = aws_target
    monkeypatch.setattr(aws, "client", lambda env, service, region=None: InProcessLambda(engine, fail=True))
    monkeypatch.setattr(run_module, "AWS_POLL_SECONDS", 0.05)
    with pytest.raises(UserError, match="was not started within 1 s: see the initiator's log and the FailedInvocationQueue"):
        run_backup(target, runner=run_module.run_on_aws, console=Console(quiet=True), timeout=1)


def test_pruner_handler_dry_run_deletes_nothing(local_env):
    engine = make_engine(local_env)
    put(engine, "ned", "a.pdf", DATA)
    from engine_support import backup
    backup(engine)
    put(engine, "ned", "a.pdf", DATA + b"v2")
    # Day 5's snapshot becomes the checkpoint before the window (the `base` rule): the first expires.
    engine.clock.advance(days=5)
    backup(engine)
    engine.clock.advance(days=65)
    backup(engine)
    runtime.configure(engine.clients, engine.settings)
    dry = pruner_handler.handler({"dry_run": True}, context("pruner"))
    assert (dry["dry_run"], dry["manifests_expired"], dry["content_deleted"]) == (True, 1, 1)
    assert len(engine.s3.list_objects_v2(Bucket=engine.settings.backup_bucket, Prefix="manifests/")["Contents"]) == 3
    done = pruner_handler.handler({}, context("pruner"))
    assert (done["dry_run"], done["manifests_expired"], done["content_deleted"]) == (False, 1, 1)
    assert len(engine.s3.list_objects_v2(Bucket=engine.settings.backup_bucket, Prefix="manifests/")["Contents"]) == 2


def test_the_cli_wires_the_deployed_functions_on_aws_and_the_in_process_handlers_on_the_emulator():
    """The choice of runner is made where the commands are wired (cli.py), from the seam's fact."""
    import cli
    from backup_cfn.local.drill import drill_in_process
    from backup_cfn.ops.drill import drill_on_aws

    dev, local = load_environment("dev"), load_environment("local")
    assert (cli.backup_runner(dev), cli.drill_runner(dev)) == (run_module.run_on_aws, drill_on_aws)
    assert (cli.backup_runner(local), cli.drill_runner(local)) == (run_in_process, drill_in_process)
