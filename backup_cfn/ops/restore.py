"""`backup-cfn restore`: users' files as they were at a run, to a directory (every file's SHA-256
checked) or to S3 (server-side copies), from the backup bucket or, for disaster recovery, from the
replica bucket alone. One user goes to the target itself; many (`--user` repeated, `--all-users`)
go to <target>/<user>/, several users at once, under one progress display and one summary."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from backup_cfn import aws, contract
from backup_cfn.config import Environment
from backup_cfn.deploy.outputs import outputs_of
from backup_cfn.engine import naming
from backup_cfn.engine.errors import RestoreError
from backup_cfn.engine.integrity import ContentVersions
from backup_cfn.engine.manifest import SnapshotRef, read_manifest
from backup_cfn.engine.pointintime import view_at, view_from_first_versions
from backup_cfn.engine.restore import (
    BucketTarget,
    DirectoryTarget,
    FILE_THREADS,
    USERS_AT_ONCE,
    RestoreReport,
    choose_snapshot,
    load_for_restore,
    every_users_snapshot,
    named_snapshots,
    restore_users,
    select,
)
from backup_cfn.engine.vault import VaultCatalog, vault_catalog
from backup_cfn.engine.verify import MAX_LISTED_PROBLEMS
from backup_cfn.errors import UserError
from backup_cfn.ops import restore_service
from backup_cfn.ops.format import human_bytes
from backup_cfn.ops.selection import check_run_id, check_user, parse_at
from backup_cfn.ops.target import connect
from backup_cfn.ops.vault import connect_vault
from backup_cfn.output import print_json, print_line, print_table, side_console

MAX_LISTED_USERS = 20     # failed users named in the final error line and the failures table


def replica_target(env: Environment) -> tuple[object, str]:
    """The replica bucket and a client for it, from the replica stack alone: the disaster-recovery
    path needs nothing from the primary region."""
    outputs = outputs_of(aws.client(env, "cloudformation", env.replica_region), env.replica_stack_name)
    if not outputs or not outputs.get(contract.OUTPUT_REPLICA_BUCKET):
        raise UserError(f"replica stack {env.replica_stack_name} in {env.replica_region} has no "
                        f"{contract.OUTPUT_REPLICA_BUCKET} output")
    return aws.client(env, "s3", env.replica_region), outputs[contract.OUTPUT_REPLICA_BUCKET]


def restore(s3, bucket: str, *, user: str, to: str, run_id: str | None = None, at: datetime | None = None,
            path_prefix: str | None = None, console: Console | None = None, threads: int = FILE_THREADS,
            window_start: datetime | None = None, vault: VaultCatalog | None = None):
    """One user's files as they were at a run, at a point in time (`at`: the snapshot finished by
    then plus the journal), or in the newest snapshot; `vault`: the vault's catalogue, every
    snapshot, segment and content read by version."""
    console = console or Console()
    check_run_id(run_id)
    check_user(user)
    reader = ContentVersions(s3, bucket, versioned=vault is not None)
    if at is not None and run_id is None:
        view = (view_from_first_versions(s3, bucket, user, vault.refs, at, window_start=window_start)
                if vault is not None else view_at(s3, bucket, user, at, window_start=window_start))
        manifest = view.manifest
        for note in view.notes:
            console.print(f"note: {note}", highlight=False)
    elif vault is not None:
        ref = choose_snapshot([r for r in vault.refs if r.user == user], user, bucket, run_id=run_id, at=at)
        manifest = read_manifest(s3, bucket, ref.key, ref.version_id)
    else:
        manifest = load_for_restore(s3, bucket, user, run_id=run_id)
    entries = select(manifest, path_prefix)
    if path_prefix and not entries:
        raise UserError(f"run {manifest.run_id} of {user!r} holds no file under {path_prefix!r}")
    target = restore_target(to, bucket)
    with Progress(TextColumn("restore {task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} bytes"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{user}@{manifest.run_id}", total=sum(e.size for e in entries.values()))
        advance = lambda n: progress.update(task, advance=n)  # noqa: E731
        try:
            report = target.restore(s3, bucket, manifest, path_prefix=path_prefix, threads=threads, progress=advance,
                                    reader=reader)
        except OSError as exc:  # the target directory itself: not a directory, read-only, no space
            raise UserError(f"--to {to}: cannot restore there: {exc.strerror or exc}") from None
    when = f"as at {manifest.created_at}" if at is not None and run_id is None else f"at run {manifest.run_id}"
    console.print(f"restored {report.files} file(s), {human_bytes(report.bytes)} of {user} {when} to {to}"
                  + (" (every SHA-256 checked)" if not to.startswith("s3://") else ""), highlight=False)
    for note in report.tampered[:MAX_LISTED_PROBLEMS]:
        console.print(f"[yellow]tampered[/yellow] {note}", highlight=False)
    if not report.ok:
        for problem in report.problems[:MAX_LISTED_PROBLEMS]:
            console.print(f"[red]problem[/red] {problem}")
        raise UserError(f"{len(report.problems)} file(s) not restored")
    return report


def restore_target(to: str, bucket: str):
    """--to as a DirectoryTarget or a BucketTarget; never the bucket restored from."""
    if not to.startswith("s3://"):
        return DirectoryTarget(Path(to))
    target_bucket, _, prefix = to[5:].partition("/")
    if not target_bucket:
        raise UserError(f"--to {to!r}: expected s3://bucket/prefix")
    if target_bucket == bucket:
        raise UserError("--to must not be the backup bucket itself")
    return BucketTarget(target_bucket, prefix)


class Tally:
    """What the user pool has restored so far, for the one progress display (thread-safe)."""

    def __init__(self, progress: Progress, task):
        self._lock = threading.Lock()
        self._progress, self._task = progress, task
        self.files = self.bytes = self.failed = 0

    def file_done(self, size: int) -> None:
        with self._lock:
            self.files += 1
            self.bytes += size
            self._progress.update(self._task, files=self.files, size=human_bytes(self.bytes))

    def user_done(self, report: RestoreReport) -> None:
        with self._lock:
            self.failed += 0 if report.ok else 1
            self._progress.update(self._task, advance=1, failed=self.failed)


def restore_many(s3, bucket: str, *, users: list[str] | None, to: str, run_id: str | None = None,
                 at: datetime | None = None, path_prefix: str | None = None, console: Console | None = None,
                 as_json: bool = False, per_user_folders: bool = True, source: str = "backup",
                 users_at_once: int | None = None, window_start: datetime | None = None,
                 vault: VaultCatalog | None = None) -> dict:
    """Restore the named users (each at the snapshot of `run_id`, the newest at or before `at`, or the
    newest) or, when `users` is None, every user with a snapshot (each at its newest at or before
    `run_id` or `at`: a point in time for a disaster-recovery restore), several at once. Prints a summary (or the
    backup-cfn/restore document); a user that fails does not stop the others, and the call then
    raises one line naming them."""
    console = console or Console()
    check_run_id(run_id)
    for user in users or ():
        check_user(user)
    target = restore_target(to, bucket)
    limit = run_id or (naming.run_id_for(at) if at else None)
    refs = vault.refs if vault is not None else None
    load = None
    if at is not None and run_id is None:
        snapshots, missing, load = points_in_time(s3, bucket, users, at, window_start, refs=refs)
    elif users is None:
        snapshots, missing = every_users_snapshot(s3, bucket, limit=limit, refs=refs)
    else:
        snapshots, missing = named_snapshots(s3, bucket, users, run_id=run_id, at=at, refs=refs)
    if users is not None and missing:     # a user named by mistake: nothing restored, every such user named at once
        reasons = [missing[user] for user in sorted(missing)[:MAX_LISTED_USERS]]
        more = len(missing) - len(reasons)
        raise UserError("; ".join(reasons) + (f"; and {more} more" if more else ""))
    if not snapshots:
        raise UserError(f"no backups in s3://{bucket}" if not missing else
                        f"no user has a backup at or before {limit} ({len(missing)} user(s) only have later ones)")
    if isinstance(target, DirectoryTarget):
        try:
            target.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--to {to}: cannot restore there: {exc.strerror or exc}") from None
    if not per_user_folders:
        target = _SameTarget(target)
    side = side_console(console, as_json)
    started = time.perf_counter()
    with Progress(TextColumn("restore"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} users"),
                  TextColumn("{task.fields[files]} files, {task.fields[size]}"),
                  TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(), console=side) as progress:
        tally = Tally(progress, progress.add_task("users", total=len(snapshots), files=0, size=human_bytes(0), failed=0))
        reports = restore_users(s3, bucket, snapshots, target, path_prefix=path_prefix,
                                users_at_once=users_at_once or USERS_AT_ONCE,
                                progress=tally.file_done, user_done=tally.user_done, load=load,
                                reader=ContentVersions(s3, bucket, versioned=vault is not None))
    summary = restore_summary(reports, missing, seconds=time.perf_counter() - started, bucket=bucket, source=source,
                              to=to, run_id=run_id, at=at, path_prefix=path_prefix)
    return report_summary(console, summary, as_json)


def report_summary(console: Console, summary: dict, as_json: bool) -> dict:
    """Print the summary (or the backup-cfn/restore document); one line naming the users not restored."""
    if as_json:
        print_json("restore", summary)
    else:
        print_summary(console, summary)
    failed = [u for u in summary["users"] if not u["ok"]]
    if failed:
        names = ", ".join(u["user"] for u in failed[:MAX_LISTED_USERS])
        more = f" and {len(failed) - MAX_LISTED_USERS} more" if len(failed) > MAX_LISTED_USERS else ""
        raise UserError(f"{len(failed)} of {len(summary['users'])} user(s) not restored: {names}{more}")
    return summary


def points_in_time(s3, bucket: str, users: list[str] | None, at: datetime, window_start: datetime | None,
                   refs: list[SnapshotRef] | None = None):
    """Each user's files at `at` (every user with a snapshot or a journal when `users` is None): the
    refs to restore, the users without any backup then (with the reason), and how to load each.
    `refs`: the vault's snapshots, read with the journal at their first versions."""
    if users is None:
        users = sorted({ref.user for ref in every_users_snapshot(s3, bucket, refs=refs)[0]}
                       | set(journal_users(s3, bucket)))
    run_id = naming.run_id_for(at)

    def view(user: str):
        try:
            if refs is not None:
                return view_from_first_versions(s3, bucket, user, refs, at, window_start=window_start).manifest
            return view_at(s3, bucket, user, at, window_start=window_start).manifest
        except RestoreError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=USERS_AT_ONCE) as pool:
        views = dict(zip(users, pool.map(view, users)))
    missing = {user: found for user, found in views.items() if isinstance(found, str)}
    refs = [SnapshotRef(user, run_id, "") for user in users if user not in missing]
    return refs, missing, lambda ref: views[ref.user]


def journal_users(s3, bucket: str) -> list[str]:
    """Users with a journal, from a delimited listing of journal/ (one request per 1,000 users)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=contract.JOURNAL_PREFIX,
                                                             Delimiter="/"):
        found += [p["Prefix"][len(contract.JOURNAL_PREFIX):-1] for p in page.get("CommonPrefixes", [])]
    return found


class _SameTarget:
    """One user's restore: to the target itself, as `restore --user U --to T` always has."""

    def __init__(self, target):
        self._target = target

    def for_user(self, user: str):
        return self._target


def restore_summary(reports: list[RestoreReport], missing: dict[str, str], *, seconds: float, bucket: str,
                    source: str, to: str, run_id: str | None, at: datetime | None, path_prefix: str | None) -> dict:
    files, size = sum(r.files for r in reports), sum(r.bytes for r in reports)
    return {
        "source": source, "ran_on": "this machine", "restore_id": None,
        "bucket": bucket, "to": to, "run_id": run_id, "at": naming.iso(at) if at else None,
        "path_prefix": path_prefix or "",
        "users_total": len(reports), "users_restored": sum(1 for r in reports if r.ok),
        "users_failed": sum(1 for r in reports if not r.ok), "users_skipped": len(missing),
        "tampered": [note for r in reports for note in r.tampered][:MAX_LISTED_PROBLEMS],
        "files": files, "bytes": size, "seconds": round(seconds, 3),
        "objects_per_second": round(files / seconds, 1) if seconds else None,
        "mb_per_second": round(size / 1e6 / seconds, 2) if seconds else None,
        "users": [{"user": r.user, "run_id": r.run_id, "to": r.to, "ok": r.ok, "files": r.files, "bytes": r.bytes,
                   "seconds": round(r.seconds, 3),
                   "problems_total": r.problems_total if r.problems_total is not None else len(r.problems),
                   "problems": r.problems[:MAX_LISTED_PROBLEMS]} for r in reports],
        "skipped": [{"user": user, "reason": reason} for user, reason in sorted(missing.items())],
    }


def print_summary(console: Console, summary: dict) -> None:
    table = Table(title="restore", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rate = lambda value, unit: f"{value} {unit}" if value is not None else "-"  # noqa: E731
    for row in (("from", f"s3://{summary['bucket']} ({summary['source']})"),
                ("to", summary["to"].rstrip("/") + ("/<user>/" if len({u["to"] for u in summary["users"]}) > 1 else "")),
                ("users restored", f"{summary['users_restored']} of {summary['users_total']}"),
                ("users failed", str(summary["users_failed"])),
                ("users skipped (no snapshot then)", str(summary["users_skipped"])),
                ("files", str(summary["files"])),
                ("bytes", human_bytes(summary["bytes"])),
                ("time", f"{summary['seconds']:.1f} s"),
                ("objects/s", rate(summary["objects_per_second"], "")),
                ("MB/s", rate(summary["mb_per_second"], ""))):
        table.add_row(*row)
    print_table(console, table)
    if not summary["to"].startswith("s3://"):
        print_line(console, "every restored file's SHA-256 checked")
    failed = [u for u in summary["users"] if not u["ok"]]
    if failed:
        failures = Table(title="users not restored")
        for column in ("user", "run", "restored", "reason"):
            failures.add_column(column)
        for user in failed[:MAX_LISTED_USERS]:
            more = f" (and {user['problems_total'] - 1} more)" if user["problems_total"] > 1 else ""
            failures.add_row(user["user"], user["run_id"], f"{user['files']} file(s)", user["problems"][0] + more)
        print_table(console, failures)
    for skipped in summary["skipped"][:MAX_LISTED_USERS]:
        print_line(console, f"skipped {skipped['user']}: {skipped['reason']}")
    for note in summary.get("tampered", []):
        print_line(console, f"tampered (restored from a version that matches): {note}")


def do_restore(env: Environment, *, console: Console, users: tuple[str, ...] | list[str] = (), all_users: bool = False,
               to: str | None = None, run_id: str | None = None, at: str | None = None, path_prefix: str | None = None,
               from_replica: bool = False, from_vault: bool = False, include_late: bool = False,
               as_json: bool = False, on_this_machine: bool = False,
               resume: str | None = None, runner: restore_service.RestoreRunner | None = None):
    if resume:
        if users or all_users or run_id or at or path_prefix or from_replica or from_vault or on_this_machine:
            raise UserError("--resume takes the restore's own users, snapshot and target: give it alone")
        return restore_by_stack(env, resume=resume, console=console, as_json=as_json, runner=runner)
    if not to:
        raise UserError("give --to (a folder, or s3://BUCKET/PREFIX)")
    if run_id and at:
        raise UserError("give --run or --at, not both")
    if from_replica and from_vault:
        raise UserError("give --from-replica or --from-vault, not both")
    if include_late and not from_vault:
        raise UserError("--include-late applies to --from-vault only")
    if from_replica and env.has_vault:
        raise UserError(f"environment '{env.name}' keeps its disaster-recovery copy in its vault: use --from-vault")
    if all_users and users:
        raise UserError("give --user or --all-users, not both")
    if not all_users and not users:
        raise UserError("give --user (repeat it for several users) or --all-users")
    moment = parse_at(at) if at else None
    named = list(dict.fromkeys(users))
    vault = None
    if from_vault:
        # The vault is read with the vault's (or a recovery account's) credentials, here: the stack's
        # restore function runs in the production account, which has no read on the vault.
        target = connect_vault(env)
        s3, bucket = target.clients.s3, target.settings.bucket
        vault = vault_catalog(s3, bucket, max_arrival_hours=target.settings.max_arrival_hours,
                              include_late=include_late)
        for line in vault.problems()[:MAX_LISTED_PROBLEMS]:
            print_line(side_console(console, as_json), f"vault: {line}")
    elif (all_users or len(named) > 1) and to.startswith("s3://") and not on_this_machine:
        check_run_id(run_id)
        for user in named:
            check_user(user)
        return restore_by_stack(env, users=None if all_users else named, to=to, run_id=run_id, at=moment,
                                path_prefix=path_prefix, from_replica=from_replica, console=console, as_json=as_json,
                                runner=runner)
    elif from_replica:
        s3, bucket = replica_target(env)
    else:
        target = connect(env)
        s3, bucket = target.clients.s3, target.settings.backup_bucket
    window_start = datetime.now(timezone.utc) - timedelta(days=env.retention_days)
    if len(named) == 1 and not as_json:
        return restore(s3, bucket, user=named[0], to=to, run_id=run_id, at=moment, path_prefix=path_prefix,
                       console=console, window_start=window_start, vault=vault)
    return restore_many(s3, bucket, users=None if all_users else named, to=to, run_id=run_id, at=moment,
                        path_prefix=path_prefix, console=console, as_json=as_json, per_user_folders=len(named) != 1,
                        source="vault" if from_vault else "replica" if from_replica else "backup",
                        window_start=window_start, vault=vault)


def restore_by_stack(env: Environment, *, console: Console, as_json: bool, runner: restore_service.RestoreRunner | None,
                     resume: str | None = None, users: list[str] | None = None, to: str = "",
                     run_id: str | None = None, at: datetime | None = None, path_prefix: str | None = None,
                     from_replica: bool = False) -> dict:
    """Many users into S3, by the stack's restore function (ops/restore_service.py): started (or
    resumed), followed (`runner` drives it: cli.py chooses), and summed up as `restore` sums up a
    restore on this machine."""
    if runner is None:
        raise UserError("this command cannot follow a restore run by the stack here")
    target = connect(env)
    side = side_console(console, as_json)
    if resume:
        restore_service.resume(target, resume)
        restore_id = resume
    else:
        source = "replica" if from_replica else "backup"
        # The replica is listed in its own region; the restore function reads it by name (the stack's outputs).
        source_s3 = aws.client(env, "s3", env.replica_region) if from_replica else target.clients.s3
        restore_id = restore_service.start(target, users=users, source=source, source_s3=source_s3, to=to,
                                           run_id=run_id, at=at, path_prefix=path_prefix)
    print_line(side, f"restore {restore_id}: one job per user on the restore queue, run by the stack "
                     f"(interrupted, follow it again with --resume {restore_id})")
    record = restore_service.follow(target, restore_id, runner=runner, console=side,
                                    timeout_seconds=restore_service.default_timeout(target.settings))
    spec = json.loads(record["spec"])
    reports, skipped = restore_service.reports(target, restore_id)
    seconds = (naming.parse_iso(record.get("completed_at") or naming.iso(target.settings.now()))
               - naming.parse_iso(record["started_at"])).total_seconds()
    prefix = spec["target_prefix"]
    summary = restore_summary(reports, skipped, seconds=max(seconds, 1.0),
                              bucket=dict(target.settings.restore_sources)[spec["source"]], source=spec["source"],
                              to=f"s3://{spec['target_bucket']}/{prefix + '/' if prefix else ''}", run_id=spec["run_id"],
                              at=naming.run_time(spec["at"]) if spec.get("at") else None,
                              path_prefix=spec["path_prefix"] or None)
    return report_summary(console, {**summary, "restore_id": restore_id, "ran_on": "stack"}, as_json)
