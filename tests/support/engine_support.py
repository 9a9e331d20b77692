"""Helpers for the engine tests: resources provisioned straight into the emulator (no deploy), a
clock the tests move by hand, and small drivers for backups, restores and object counts."""
from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backup_cfn import aws
from backup_cfn.engine import naming, runs
from backup_cfn.engine.settings import Clients, Settings, settings_from_outputs
from backup_cfn.local.provision import provision
from backup_cfn.local.runner import LambdaContext, drain_queue, invoke_initiator, quiet_handlers
from backup_cfn.permissions.model import OUTPUT_RESOURCES
from backup_cfn.permissions.recorder import Recorder

EVENTS = Path(__file__).resolve().parent / "events"
START = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
# Every call the handlers make through `backup()` in any test, under the role each runs as: the
# permission conformance test (test_permissions_conformance.py) evaluates them all.
SUITE_CALLS = Recorder()
INITIATOR, WORKER, PRUNER, OPERATOR = "InitiatorFunctionRole", "WorkerFunctionRole", "PrunerFunctionRole", "RestoreRole"
DEAD_LETTER = "DeadLetterFunctionRole"

quiet_handlers()


class FakeClock:
    """Time that moves only when a test says so (thread-safe)."""

    def __init__(self, start: datetime = START):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


@dataclass
class Engine:
    env: object
    clients: Clients
    settings: Settings
    outputs: dict
    clock: FakeClock
    _roles: dict = field(default_factory=dict)

    @property
    def s3(self):
        return self.clients.s3

    @property
    def aliases(self) -> dict[str, str]:
        """The emulator's names of this engine's resources -> their logical IDs in the templates."""
        return {self.outputs[name]: logical for name, (_, logical) in OUTPUT_RESOURCES.items() if self.outputs.get(name)}

    def as_role(self, role: str, recorder: Recorder = SUITE_CALLS, region: str | None = None) -> Clients:
        """Clients acting as `role` (a logical ID of the template), every call recorded under it."""
        key = (role, id(recorder), region)
        if key not in self._roles:
            make = lambda service: recorder.attach(aws.client(self.env, service, region), role, self.aliases)  # noqa: E731
            self._roles[key] = Clients(s3=make("s3"), dynamodb=make("dynamodb"), sqs=make("sqs"), sns=make("sns"))
        return self._roles[key]


def make_engine(env, **overrides) -> Engine:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    outputs = provision(lambda service, region: aws.client(env, service, region), prefix=prefix,
                        region=env.region, replica_region=env.replica_region)
    clock = FakeClock()
    settings = settings_from_outputs(outputs, retention_days=overrides.pop("retention_days", 60),
                                     stack_name=env.stack_name)
    # Retries in seconds, not minutes: the runner honours visibility timeouts in real time.
    settings = settings.with_(clock=clock, claim_wait_seconds=overrides.pop("claim_wait_seconds", 5.0),
                              job_threads=overrides.pop("job_threads", 4),
                              retry_base_seconds=overrides.pop("retry_base_seconds", 1),
                              retry_max_seconds=overrides.pop("retry_max_seconds", 2), **overrides)
    return Engine(env, aws.engine_clients(env), settings, outputs, clock)


def put(engine: Engine, user: str, path: str, data: bytes, *, checksum: bool = False) -> None:
    extra = {"ChecksumAlgorithm": "SHA256"} if checksum else {}
    engine.s3.put_object(Bucket=engine.settings.source_bucket, Key=f"{user}/{path}", Body=data, **extra)


def delete(engine: Engine, user: str, path: str) -> None:
    engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key=f"{user}/{path}")


def source_state(engine: Engine, user: str) -> dict[str, bytes]:
    state = {}
    for page in engine.s3.get_paginator("list_objects_v2").paginate(Bucket=engine.settings.source_bucket,
                                                                    Prefix=f"{user}/"):
        for obj in page.get("Contents", []):
            body = engine.s3.get_object(Bucket=engine.settings.source_bucket, Key=obj["Key"])["Body"].read()
            state[obj["Key"][len(user) + 1:]] = body
    return state


def backup(engine: Engine, users: list[str] | None = None, threads: int = 2) -> dict:
    """One run at the clock's current time, through the real handlers; returns the run record."""
    moment = engine.clock()
    invoke_initiator(engine.as_role(INITIATOR), engine.settings, moment, users)
    run_id = naming.run_id_for(moment)
    drain_queue(engine.as_role(WORKER), engine.settings, run_id=run_id, threads=threads,
                dead_letter_clients=engine.as_role(DEAD_LETTER))
    return runs.get_run(engine.clients.dynamodb, engine.settings, run_id)


def content_versions(engine: Engine, sha256: str, bucket: str | None = None) -> int:
    key = naming.content_key(sha256)
    response = engine.s3.list_object_versions(Bucket=bucket or engine.settings.backup_bucket, Prefix=key)
    return sum(1 for v in response.get("Versions", []) if v["Key"] == key)


def all_content_versions(engine: Engine) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in engine.s3.get_paginator("list_object_versions").paginate(Bucket=engine.settings.backup_bucket,
                                                                         Prefix="content/"):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def context(name: str = "worker") -> LambdaContext:
    return LambdaContext(function_name=name)


def sqs_record_event(body: str, receive_count: int = 1, message_id: str = "m-1") -> dict:
    event = load_event("sqs_job.json")
    record = event["Records"][0]
    record.update(messageId=message_id, body=body)
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return event


def read_tree(root) -> dict[str, bytes]:
    """A restored folder as {relative path: bytes}."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
