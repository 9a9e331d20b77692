"""Measure a no-op deploy against the emulator: CloudFormation API calls (counted with a botocore
event hook) and wall time. Starts a private emulator on a free port and stops it afterwards.

    .venv/bin/python scripts/measure_noop_deploy.py [--runs N]
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
from rich.console import Console  # noqa: E402

from backup_cfn.local import server  # noqa: E402
from backup_cfn.config import load_environment  # noqa: E402
from backup_cfn.deploy.clients import DeployClients  # noqa: E402
from backup_cfn.deploy.deployment import Deployment  # noqa: E402
from backup_cfn.deploy.stack_spec import Options  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("BACKUP_CFN_STATE_DIR", tempfile.mkdtemp(prefix="backup-cfn-measure-"))
    server.STATE_DIR = Path(os.environ["BACKUP_CFN_STATE_DIR"])
    port = server.free_port()
    process = server.start(port)
    try:
        env = dataclasses.replace(load_environment("local"), endpoint_url=server.url(port))
        calls: list[tuple[str, str]] = []
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register(
            "before-call", lambda model, **_: calls.append((model.service_model.service_name, model.name)))

        def deploy_once(validate: bool = True) -> tuple[float, list[tuple[str, str]]]:
            calls.clear()
            started = time.perf_counter()
            Deployment(env, DeployClients.for_environment(env), Console(file=io.StringIO()), validate=validate).run(Options(yes=True))
            return time.perf_counter() - started, list(calls)

        first_seconds, first_calls = deploy_once()
        print(f"first deploy: {first_seconds:.2f} s, {sum(s == 'cloudformation' for s, _ in first_calls)} "
              f"CloudFormation calls, {len(first_calls)} AWS calls")
        timings = []
        for _ in range(args.runs):
            seconds, noop_calls = deploy_once()
            timings.append(seconds)
        unvalidated = statistics.median(deploy_once(validate=False)[0] for _ in range(args.runs))
        cfn = [op for service, op in noop_calls if service == "cloudformation"]
        print(f"no-op deploy ({args.runs} runs): median {statistics.median(timings):.2f} s "
              f"(min {min(timings):.2f}, max {max(timings):.2f}), including validation (cfn-lint) and packaging")
        print(f"  without validation: median {unvalidated:.2f} s")
        print(f"  CloudFormation calls: {len(cfn)}: {dict(collections.Counter(cfn))}")
        print(f"  all AWS calls: {len(noop_calls)}: {dict(collections.Counter(f'{s}:{o}' for s, o in noop_calls))}")
    finally:
        server.stop(port)
        if process is not None:
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
