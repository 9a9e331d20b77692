"""`status`: whether the disaster-recovery copy is current.

From the production side, with its own credentials: the newest run's snapshots and the replication
status S3 keeps on each (HeadObject's ReplicationStatus: PENDING, COMPLETED or FAILED). From the
vault, when its credentials are at hand: the newest snapshot it holds (first versions only) and
whether the newest run's snapshots are all there.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from backup_cfn.engine.manifest import list_snapshots
from backup_cfn.engine.vault import vault_catalog

SAMPLE = 50          # snapshots of the newest run whose replication status is read


@dataclass
class ReplicationState:
    newest_run: str | None = None
    snapshots: int = 0                                 # of the newest run
    statuses: Counter = field(default_factory=Counter)  # of the sampled ones
    vault_newest_run: str | None = None
    vault_has_newest: int | None = None               # of the newest run's snapshots, how many the vault holds
    error: str = ""

    @property
    def current(self) -> bool | None:
        if self.newest_run is None:
            return None
        done = set(self.statuses) <= {"COMPLETED"} and bool(self.statuses)
        if self.vault_has_newest is not None:
            done = done and self.vault_has_newest == self.snapshots
        return done

    def to_json(self) -> dict:
        return {"newest_run": self.newest_run, "snapshots": self.snapshots, "statuses": dict(self.statuses),
                "vault_newest_run": self.vault_newest_run, "vault_has_newest": self.vault_has_newest,
                "current": self.current, "error": self.error}


def replication_state(s3, bucket: str, *, vault_s3=None, vault_bucket: str | None = None) -> ReplicationState:
    state = ReplicationState()
    refs = list_snapshots(s3, bucket)
    if not refs:
        return state
    state.newest_run = max(r.run_id for r in refs)
    newest = sorted((r for r in refs if r.run_id == state.newest_run), key=lambda r: r.key)
    state.snapshots = len(newest)

    def status(ref) -> str:
        return s3.head_object(Bucket=bucket, Key=ref.key).get("ReplicationStatus", "NONE")

    with ThreadPoolExecutor(max_workers=8) as pool:
        state.statuses.update(pool.map(status, newest[:SAMPLE]))
    if vault_s3 is not None and vault_bucket:
        try:
            held = vault_catalog(vault_s3, vault_bucket).refs
        except (ClientError, BotoCoreError) as exc:
            state.error = f"vault not readable: {exc}"
            return state
        state.vault_newest_run = max((r.run_id for r in held), default=None)
        keys = {r.key for r in held}
        state.vault_has_newest = sum(1 for r in newest if r.key in keys)
    return state


def print_state(console: Console, state: ReplicationState, where: str) -> None:
    if state.newest_run is None:
        console.print(f"replication to {where}: no backups yet")
        return
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(state.statuses.items()))
    verdict = {True: "[green]current[/green]", False: "[yellow]behind[/yellow]", None: "unknown"}[state.current]
    line = (f"replication to {where}: {verdict}; newest run {state.newest_run}: {state.snapshots} snapshot(s), "
            f"sampled {sum(state.statuses.values())}: {statuses}")
    if state.vault_has_newest is not None:
        line += f"; the vault holds {state.vault_has_newest} of them (its newest run {state.vault_newest_run})"
    console.print(line, highlight=False)
    if state.error:
        console.print(f"  [yellow]{state.error}[/yellow]")
