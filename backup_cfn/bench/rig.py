"""The bench's rig: its sizes, the demo data generator's users as the source, and the real engine
on a private emulator (resources provisioned directly, a clock the scenarios move by hand)."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

START = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)
KIB = 1024


@dataclass(frozen=True)
class Sizes:
    storage_users: int
    retention_days: int
    extra_days: int            # simulated past the retention period, so expiry and collection show
    e2e_users: int
    churn: float
    hash_mib: int
    template_rounds: int
    split_objects: int          # one user's objects, backed up over scaled-down invocations
    split_deadline_seconds: float
    continuous_rate: float      # continuous protection: a steady stream of changes per second...
    continuous_seconds: float   # ...for this long
    burst_changes: int          # and a burst written as fast as the client can


FULL = Sizes(storage_users=10, retention_days=60, extra_days=10, e2e_users=1000, churn=0.01, hash_mib=256,
             template_rounds=20, split_objects=3000, split_deadline_seconds=2.0,
             continuous_rate=2.0, continuous_seconds=60, burst_changes=10_000)
QUICK = Sizes(storage_users=4, retention_days=5, extra_days=4, e2e_users=40, churn=0.05, hash_mib=16,
              template_rounds=3, split_objects=300, split_deadline_seconds=2.0,
              continuous_rate=2.0, continuous_seconds=10, burst_changes=500)


# --- the data -----------------------------------------------------------------------------------
# The engine's demo data generator (backup_cfn.ops.demo_data): users' reports and spreadsheets, a
# document every user holds, industry reports some share, and daily revisions, additions, deletions.
SEED = 42


def source_keys(users: int, day: int) -> dict[str, "object"]:
    """Every source key on `day` and its FileSpec, as the generator makes them."""
    from backup_cfn.ops import demo_data

    files = {}
    for i in range(1, users + 1):
        user = demo_data.user_name(i)
        for path, spec in demo_data.user_files(SEED, user, day).items():
            files[f"{user}/{path}"] = spec
    return files


def churn(s3, bucket: str, keys: list[str], share: float, seed: int = 7) -> list[str]:
    """Overwrite `share` of the objects (at least one) with new content; returns their keys."""
    rng = random.Random(seed)
    changed = rng.sample(sorted(keys), max(1, round(len(keys) * share)))
    def put(key):
        s3.put_object(Bucket=bucket, Key=key, Body=rng.randbytes(1) + os.urandom(8 * KIB))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, changed))
    return changed


# --- the engine on the emulator -----------------------------------------------------------------

class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Rig:
    clients: object
    settings: object
    clock: Clock
    counter: object
    outputs: dict = dataclasses.field(default_factory=dict)


def make_rig(env, retention_days: int, job_threads: int = 8) -> Rig:
    from backup_cfn import aws
    from backup_cfn.engine.settings import RequestCounter, settings_from_outputs
    from backup_cfn.local.provision import provision

    outputs = provision(lambda service, region: aws.client(env, service, region), prefix=f"b{uuid.uuid4().hex[:10]}",
                        region=env.region, replica_region=env.replica_region)
    clock = Clock(START)
    settings = settings_from_outputs(outputs, retention_days=retention_days, stack_name=env.stack_name)
    settings = settings.with_(clock=clock, job_threads=job_threads)
    clients = aws.engine_clients(env)
    counter = clients.count_requests(RequestCounter())
    return Rig(clients, settings, clock, counter, outputs)


def run_backup(rig: Rig, threads: int, drained: list | None = None) -> dict:
    """One run through the handlers; the runner's report is appended to `drained` if given."""
    from backup_cfn.engine import naming, runs
    from backup_cfn.local.runner import drain_queue, invoke_initiator

    moment = rig.clock()
    invoke_initiator(rig.clients, rig.settings, moment, None)
    run_id = naming.run_id_for(moment)
    report = drain_queue(rig.clients, rig.settings, run_id=run_id, threads=threads)
    if drained is not None:
        drained.append(report)
    return runs.get_run(rig.clients.dynamodb, rig.settings, run_id)


def stored_content_bytes(rig: Rig, prefix: str = "content/") -> int:
    total = 0
    for page in rig.clients.s3.get_paginator("list_objects_v2").paginate(Bucket=rig.settings.backup_bucket,
                                                                          Prefix=prefix):
        total += sum(obj["Size"] for obj in page.get("Contents", []))
    return total


def stored_manifest_bytes(rig: Rig) -> int:
    """The manifests the backup bucket holds (after the collector: the kept snapshots')."""
    return stored_content_bytes(rig, "manifests/")



def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def emulator_env():
    """The `local` environment on a private emulator this bench starts and stops."""
    from backup_cfn.config import load_environment
    from backup_cfn.local import server

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = server.free_port()
    server.start(port)
    try:
        yield dataclasses.replace(load_environment("local"), endpoint_url=server.url(port))
    finally:
        server.stop(port)


def save_chart(fig, ax, path) -> None:
    """A chart's legend and grid, then the PNG written and the figure closed (matplotlib keeps every
    open figure otherwise)."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
