"""`backup-cfn restore`: a user's files as they were at a run, to a directory (every file's
SHA-256 checked) or to S3 (server-side copies), from the backup bucket or, for disaster recovery,
from the replica bucket alone."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from backup_cfn import aws, contract
from backup_cfn.config import Environment
from backup_cfn.deploy.outputs import outputs_of
from backup_cfn.engine.restore import load_for_restore, restore_to_directory, restore_to_s3
from backup_cfn.engine.verify import MAX_LISTED_PROBLEMS
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes
from backup_cfn.ops.selection import check_run_id, check_user, parse_at
from backup_cfn.ops.target import connect


def replica_target(env: Environment) -> tuple[object, str]:
    """The replica bucket and a client for it, from the replica stack alone: the disaster-recovery
    path needs nothing from the primary region."""
    outputs = outputs_of(aws.client(env, "cloudformation", env.replica_region), env.replica_stack_name)
    if not outputs or not outputs.get(contract.OUTPUT_REPLICA_BUCKET):
        raise UserError(f"replica stack {env.replica_stack_name} in {env.replica_region} has no "
                        f"{contract.OUTPUT_REPLICA_BUCKET} output")
    return aws.client(env, "s3", env.replica_region), outputs[contract.OUTPUT_REPLICA_BUCKET]


def restore(s3, bucket: str, *, user: str, to: str, run_id: str | None = None, at: datetime | None = None,
            path_prefix: str | None = None, console: Console | None = None, threads: int = 8):
    console = console or Console()
    check_run_id(run_id)
    check_user(user)
    manifest = load_for_restore(s3, bucket, user, run_id=run_id, at=at)
    entries = len(manifest.entries if not path_prefix else
                  [p for p in manifest.entries if p.startswith(path_prefix)])
    if path_prefix and not entries:
        raise UserError(f"run {manifest.run_id} of {user!r} holds no file under {path_prefix!r}")
    with Progress(TextColumn("restore {task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} bytes"),
                  TimeElapsedColumn(), console=console) as progress:
        total = sum(e.size for p, e in manifest.entries.items() if not path_prefix or p.startswith(path_prefix))
        task = progress.add_task(f"{user}@{manifest.run_id}", total=total)
        advance = lambda n: progress.update(task, advance=n)  # noqa: E731
        if to.startswith("s3://"):
            target_bucket, _, prefix = to[5:].partition("/")
            if not target_bucket:
                raise UserError(f"--to {to!r}: expected s3://bucket/prefix")
            if target_bucket == bucket:
                raise UserError("--to must not be the backup bucket itself")
            report = restore_to_s3(s3, bucket, manifest, target_bucket, prefix, path_prefix=path_prefix,
                                   threads=threads, progress=advance)
        else:
            try:
                report = restore_to_directory(s3, bucket, manifest, Path(to), path_prefix=path_prefix,
                                              threads=threads, progress=advance)
            except OSError as exc:  # the target itself: not a directory, read-only, no space
                raise UserError(f"--to {to}: cannot restore there: {exc.strerror or exc}") from None
    console.print(f"restored {report.files} file(s), {human_bytes(report.bytes)} of {user} at run "
                  f"{manifest.run_id} to {to}" + (" (every SHA-256 checked)" if not to.startswith("s3://") else ""))
    if not report.ok:
        for problem in report.problems[:MAX_LISTED_PROBLEMS]:
            console.print(f"[red]problem[/red] {problem}")
        raise UserError(f"{len(report.problems)} file(s) not restored")
    return report


def do_restore(env: Environment, *, console: Console, user: str, to: str, run_id: str | None = None,
               at: str | None = None, path_prefix: str | None = None, from_replica: bool = False):
    if run_id and at:
        raise UserError("give --run or --at, not both")
    moment = parse_at(at) if at else None
    if from_replica:
        s3, bucket = replica_target(env)
    else:
        target = connect(env)
        s3, bucket = target.clients.s3, target.settings.backup_bucket
    return restore(s3, bucket, user=user, to=to, run_id=run_id, at=moment, path_prefix=path_prefix, console=console)
