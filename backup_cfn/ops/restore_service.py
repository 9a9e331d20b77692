"""`backup-cfn restore` of many users into S3, run by the stack: the restore is recorded, one job
per user goes on the restore queue, and the restore function does the copies (engine/restore_jobs.py).
This process follows it with the progress display and prints the summary of `restore`, from the
result each user's job recorded. Interrupted (Ctrl-C, a closed laptop), the jobs go on; `--resume
ID` follows it again, and enqueues again the users without a result whose jobs an interrupted
enqueuing never sent (a duplicate job finds its user's result and stops)."""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from backup_cfn import contract
from backup_cfn.engine import attempts, naming, restore_jobs
from backup_cfn.engine.initiator import enqueue_jobs
from backup_cfn.engine.restore import RestoreReport
from backup_cfn.errors import RunStuck, UserError
from backup_cfn.ops.format import human_bytes, number
from backup_cfn.ops.target import DeployedEnvironment

AWS_POLL_SECONDS = 5


def restore_target(to: str, settings) -> tuple[str, str]:
    """--to as (bucket, prefix): the restore function writes into the source bucket only."""
    if not to.startswith("s3://"):
        raise UserError(f"--to {to!r}: the restore service restores into S3 (s3://{settings.source_bucket}/PREFIX/); "
                        "restore to a folder on this machine with --on-this-machine")
    bucket, _, prefix = to[5:].partition("/")
    if bucket != settings.source_bucket:
        raise UserError(f"--to {to}: the restore function may write only into the source bucket "
                        f"s3://{settings.source_bucket}/; restore elsewhere with --on-this-machine")
    return bucket, prefix.strip("/")


def users_with_snapshots(s3, bucket: str, prefix: str = "manifests/") -> list[str]:
    """Every user with a snapshot in the bucket: the prefixes under manifests/ (1,000 a page); with
    `prefix` journal/, every user with a journal."""
    users = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        users += [p["Prefix"][len(prefix):-1] for p in page.get("CommonPrefixes", [])]
    return [u for u in users if naming.is_valid_user(u)]


def start(target: DeployedEnvironment, *, users: list[str] | None, source: str, source_s3, to: str,
          run_id: str | None, at: datetime | None, path_prefix: str | None, moment: datetime | None = None) -> str:
    """Record the restore and enqueue its jobs; its ID. A restore of "the newest" snapshots is pinned
    to the moment it starts, so every user (and a resumed one) restores as of the same time."""
    settings, dynamodb = target.settings, target.clients.dynamodb
    bucket, prefix = restore_target(to, settings)
    sources = dict(settings.restore_sources)
    if source not in sources:
        raise UserError(f"the stack's restore function does not read a {source!r} source")
    moment = (moment or settings.now()).replace(microsecond=0)
    # A minute to restore (--at, issue 20): each user's snapshot and journal; every user then
    # includes those with only a journal (new since the last nightly run).
    point_in_time = at is not None and not run_id
    chosen = list(dict.fromkeys(users)) if users is not None else users_with_snapshots(source_s3, sources[source])
    if users is None and point_in_time:
        chosen = sorted(set(chosen) | set(users_with_snapshots(source_s3, sources[source], contract.JOURNAL_PREFIX)))
    if not chosen:
        raise UserError(f"no backups in s3://{sources[source]}")
    if len(chosen) > restore_jobs.MAX_USERS:
        raise UserError(f"{len(chosen):,} users: one restore by the stack records at most {restore_jobs.MAX_USERS:,}; "
                        "restore them in groups (--user ...)")
    if users is None and run_id:
        # Every user: each one's newest snapshot at or before that run (as on this machine).
        run_id, at = None, naming.run_time(run_id)
    spec = {"source": source, "run_id": run_id, "at": naming.run_id_for(at or moment) if not run_id else None,
            "target_bucket": bucket, "target_prefix": prefix, "path_prefix": path_prefix or "",
            **({"point_in_time": True} if point_in_time else {})}
    restore_id = restore_jobs.new_restore_id(moment)
    created, _ = restore_jobs.create_restore(dynamodb, settings, restore_id, chosen, spec)
    if not created:
        raise UserError(f"a restore {restore_id} exists already: follow it with --resume {restore_id}")
    _enqueue(target, restore_id, spec, chosen)
    return restore_id


def resume(target: DeployedEnvironment, restore_id: str) -> dict:
    """Enqueue again the users of an unfinished restore that have no result; its header."""
    dynamodb, settings = target.clients.dynamodb, target.settings
    header = restore_jobs.get_restore(dynamodb, settings, restore_id) if restore_jobs.is_restore_id(restore_id) else None
    if header is None:
        raise UserError(f"no restore {restore_id} (restore IDs look like R20261125T031500Z)")
    if header.get("status") in restore_jobs.FINAL_STATUSES:
        return header
    spec = json.loads(header["spec"])
    done = {r["user"] for r in restore_jobs.user_results(dynamodb, settings, restore_id) if r.get("status")}
    _enqueue(target, restore_id, spec, [u for u in restore_jobs.restore_users(dynamodb, settings, restore_id)
                                        if u not in done])
    return header


def _enqueue(target: DeployedEnvironment, restore_id: str, spec: dict, users: list[str]) -> None:
    jobs = [restore_jobs.RestoreJob(restore_id, user, spec["source"], spec["target_bucket"], spec["target_prefix"],
                                    run_id=spec["run_id"], at=spec["at"], path_prefix=spec["path_prefix"],
                                    point_in_time=spec.get("point_in_time", False))
            for user in users]
    enqueue_jobs(target.clients.sqs, target.settings, jobs, queue_url=target.settings.restore_queue_url)
    restore_jobs.mark_enqueued(target.clients.dynamodb, target.settings, restore_id)


# Drives a restore the stack runs to its end: (target, restore_id, refresh, timeout_seconds=...) ->
# None; raises RunStuck when nothing moves for timeout_seconds. follow_on_aws here, or the
# emulator's in-process runner (backup_cfn.local.runner.run_restore_in_process): cli.py chooses.
RestoreRunner = Callable[..., None]


def follow(target: DeployedEnvironment, restore_id: str, *, runner: RestoreRunner, console: Console,
           timeout_seconds: float) -> dict:
    """The progress display until the restore is closed; RunStuck when nothing moved for the timeout."""
    dynamodb, settings = target.clients.dynamodb, target.settings
    columns = (TextColumn("restore {task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} users"),
               TextColumn("{task.fields[files]} files, {task.fields[size]}"), TextColumn("[red]{task.fields[failed]} failed"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(restore_id, total=0, files=0, size=human_bytes(0), failed=0)

        def refresh() -> dict | None:
            record = restore_jobs.get_restore(dynamodb, settings, restore_id)
            if record:
                done = sum(number(record.get(k)) for k in ("users_done", "users_failed", "users_skipped"))
                progress.update(task, total=number(record.get("users_total")), completed=done,
                                files=number(record.get("files")), size=human_bytes(number(record.get("bytes"))),
                                failed=number(record.get("users_failed")))
            return record

        runner(target, restore_id, refresh, timeout_seconds=timeout_seconds)
        return refresh() or {}


def follow_on_aws(target: DeployedEnvironment, restore_id: str, refresh: Callable[[], dict | None], *,
                  timeout_seconds: float, clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll the restore until it is closed; RunStuck when no user's result arrived for the timeout."""
    seen, moved = None, clock()
    while True:
        record = refresh() or {}
        if record.get("status") in restore_jobs.FINAL_STATUSES:
            return record
        state = tuple(number(record.get(k)) for k in ("users_done", "users_failed", "users_skipped", "files"))
        if state != seen:
            seen, moved = state, clock()
        elif clock() - moved > timeout_seconds:
            raise RunStuck(f"restore {restore_id} made no progress for {timeout_seconds:.0f} s; "
                           f"{number(record.get('users_pending'))} user(s) still pending: see the restore function's "
                           f"log, then `backup-cfn restore --resume {restore_id}`")
        sleep(AWS_POLL_SECONDS)


def default_timeout(settings) -> int:
    return attempts.worst_case_outcome_seconds(settings)


def reports(target: DeployedEnvironment, restore_id: str) -> tuple[list[RestoreReport], dict[str, str]]:
    """Each user's result as the one-machine restore reports it, and the users without a snapshot
    at that time (skipped) with the reason."""
    reported, skipped = [], {}
    for result in restore_jobs.user_results(target.clients.dynamodb, target.settings, restore_id):
        if result.get("status") == restore_jobs.SKIPPED:
            skipped[result["user"]] = result.get("reason") or "no snapshot then"
            continue
        problems = list(result.get("problems") or [])
        if result.get("status") == restore_jobs.FAILED and not problems:
            problems = [result.get("reason") or "failed"]
        reported.append(RestoreReport(result["user"], result.get("snapshot_run_id") or "",
                                      files=number(result.get("files")), bytes=number(result.get("bytes")),
                                      problems=problems, to=result.get("to") or "",
                                      problems_total=max(number(result.get("problems_total")), len(problems))))
    return reported, skipped
