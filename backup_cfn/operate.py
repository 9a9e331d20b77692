"""The operator commands behind `backup-cfn run|runs|restore|verify|prune`: resolve the deployed
resources from the stacks' outputs, call the engine, show progress and a summary with rich."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, time as day_time, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from backup_cfn import aws, layout, stack
from backup_cfn.config import Environment
from backup_cfn.engine import naming, runs
from backup_cfn.engine.errors import EngineError
from backup_cfn.engine.initiator import scheduled_event
from backup_cfn.engine.manifest import ManifestError
from backup_cfn.engine.pruner import PruneAborted, prune
from backup_cfn.engine.restore import RestoreError, load_for_restore, restore_to_directory, restore_to_s3
from backup_cfn.engine.settings import Clients, RequestCounter, Settings, settings_from_outputs
from backup_cfn.engine.verify import MAX_LISTED_PROBLEMS, verify
from backup_cfn.errors import UserError

AWS_POLL_SECONDS = 5


@dataclass
class Deployed:
    """An environment's engine: its clients and the settings read from its stacks."""
    env: Environment
    clients: Clients
    settings: Settings
    outputs: dict


def deployed(env: Environment, outputs: dict | None = None) -> Deployed:
    outputs = outputs if outputs is not None else stack.stack_outputs(env)
    try:
        settings = settings_from_outputs(outputs, source_bucket=env.source_bucket, retention_days=env.retention_days,
                                         priority_users=env.priority_users, stack_name=env.stack_name)
    except KeyError as exc:
        raise UserError(f"stack {env.stack_name} has no output {exc.args[0]}: deploy it again with "
                        f"`backup-cfn deploy --env {env.name}`") from None
    dynamodb = aws.client(env, "dynamodb")
    if env.is_local:
        from backup_cfn.localrun import AtomicWrites
        dynamodb = AtomicWrites(dynamodb)
    clients = Clients(s3=aws.client(env, "s3"), dynamodb=dynamodb, sqs=aws.client(env, "sqs"),
                      sns=aws.client(env, "sns"), replica_s3=aws.client(env, "s3", env.replica_region))
    return Deployed(env, clients, settings, outputs)


def _number(value) -> int:
    return int(value or 0)


def human_bytes(value) -> str:
    value = float(value or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


# --- run --------------------------------------------------------------------------------------

@dataclass
class RunResult:
    record: dict
    s3_requests: int | None
    s3_requests_by_operation: dict
    seconds: float


def run_backup(target: Deployed, *, users: list[str] | None = None, console: Console | None = None,
               moment: datetime | None = None) -> RunResult:
    """Start a run now and follow it to the end. Local: the handlers in-process. AWS: invoke the
    initiator and follow the runs table."""
    console = console or Console()
    moment = (moment or datetime.now(timezone.utc)).replace(microsecond=0)
    run_id = naming.run_id_for(moment)
    started = time.monotonic()
    counter = RequestCounter()
    if users:
        bad = [u for u in users if not naming.is_valid_user(u)]
        if bad:
            raise UserError(f"not a user name: {bad[0]!r} (users are top-level prefixes of the source bucket, no '/')")
    with _progress(console) as progress:
        task = progress.add_task(f"run {run_id}", total=None)

        def refresh() -> dict | None:
            record = runs.get_run(target.clients.dynamodb, target.settings, run_id)
            if record:
                finished = _number(record.get("users_done")) + _number(record.get("users_failed")) + _number(record.get("users_skipped"))
                progress.update(task, total=_number(record.get("users_total")), completed=finished)
            return record

        if target.env.is_local:
            _run_local(target, moment, users, counter, refresh)
        else:
            _run_on_aws(target, moment, users, refresh)
        record = refresh()
    if record is None:
        raise UserError(f"run {run_id} was not recorded; see the initiator's log")
    s3_requests = counter.total("s3") if target.env.is_local else None
    return RunResult(record, s3_requests, counter.by_operation("s3"), time.monotonic() - started)


def _run_local(target: Deployed, moment: datetime, users, counter: RequestCounter, refresh) -> None:
    from backup_cfn.localrun import drain_queue, invoke_initiator, quiet_handlers, take_over_event_source

    quiet_handlers()
    if target.outputs.get(layout.OUTPUT_WORKER):
        take_over_event_source(aws.client(target.env, "lambda"), target.outputs[layout.OUTPUT_WORKER])
    target.clients.count_requests(counter)
    try:
        invoke_initiator(target.clients, target.settings, moment, users)
    except EngineError as exc:
        raise UserError(str(exc)) from None
    last = [0.0]

    def on_batch():
        if time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            refresh()

    drain_queue(target.clients, target.settings, run_id=naming.run_id_for(moment),
                threads=target.env.max_concurrent_backups, on_batch=on_batch, region=target.env.region)


def _run_on_aws(target: Deployed, moment: datetime, users, refresh) -> None:
    import json

    function = target.outputs.get(layout.OUTPUT_INITIATOR)
    if not function:
        raise UserError(f"stack {target.env.stack_name} has no output {layout.OUTPUT_INITIATOR}")
    event = scheduled_event(moment, users=users, region=target.env.region, account=target.env.account_id or "")
    response = aws.client(target.env, "lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    if response.get("FunctionError"):
        raise UserError(f"the initiator failed: {response['Payload'].read().decode()[:300]}")
    while True:
        record = refresh()
        if record and record.get("status") in runs.FINAL_RUN_STATUSES:
            return
        time.sleep(AWS_POLL_SECONDS)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("users"),
                    TimeElapsedColumn(), console=console, transient=False)


def run_table(record: dict, result: RunResult | None = None) -> Table:
    table = Table(title=f"run {record['run_id']}: {record.get('status')}", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    scanned = _number(record.get("bytes_scanned"))
    rows = [
        ("users backed up", f"{_number(record.get('users_done'))} of {_number(record.get('users_total'))}"),
        ("users failed", str(_number(record.get("users_failed")))),
        ("users skipped", str(_number(record.get("users_skipped")))),
        ("files", f"{_number(record.get('files_total'))} ({_number(record.get('files_changed'))} new or changed)"),
        ("source size", human_bytes(scanned)),
        ("bytes read", _share(record.get("bytes_read"), scanned)),
        ("bytes stored new", _share(record.get("bytes_new"), scanned)),
        ("bytes deduplicated", _share(record.get("bytes_deduplicated"), scanned)),
    ]
    if result is not None and result.s3_requests is not None:
        rows.append(("S3 requests", f"{result.s3_requests}  ({', '.join(f'{k} {v}' for k, v in result.s3_requests_by_operation.items())})"))
    if result is not None:
        rows.append(("time", f"{result.seconds:.1f} s"))
    for row in rows:
        table.add_row(*row)
    return table


def _share(value, total: int) -> str:
    value = _number(value)
    return f"{human_bytes(value)} ({100 * value / total:.1f}%)" if total else human_bytes(value)


def check_run(record: dict, env: Environment) -> None:
    failed = _number(record.get("users_failed"))
    if failed:
        raise UserError(f"run {record['run_id']}: {failed} user(s) failed; see `backup-cfn runs --env {env.name} "
                        f"--run {record['run_id']}`")


# --- runs -------------------------------------------------------------------------------------

def runs_table(target: Deployed, *, user: str | None = None, run_id: str | None = None, limit: int = 10) -> Table:
    if user:
        items = runs.user_history(target.clients.dynamodb, target.settings, user, limit)
        if not items:
            raise UserError(f"no runs recorded for user {user!r}")
        table = Table(title=f"user {user}: last {len(items)} runs")
        for column in ("run", "status", "files", "changed", "size", "read", "stored new", "reason"):
            table.add_column(column)
        for item in items:
            table.add_row(item["run_id"], item.get("status", ""), str(_number(item.get("files_total"))),
                          str(_number(item.get("files_changed"))), human_bytes(item.get("bytes_scanned")),
                          human_bytes(item.get("bytes_read")), human_bytes(item.get("bytes_new")),
                          item.get("reason") or item.get("last_error") or "")
        return table
    if run_id:
        record = runs.get_run(target.clients.dynamodb, target.settings, run_id)
        if record is None:
            raise UserError(f"no run {run_id}")
        return run_table(record)
    items = runs.recent_runs(target.clients.dynamodb, target.settings, limit)
    table = Table(title=f"{target.env.stack_name}: last {len(items)} runs")
    for column in ("run", "status", "users", "failed", "skipped", "size", "read", "stored new", "completed"):
        table.add_column(column)
    for item in items:
        table.add_row(item["run_id"], item.get("status", ""),
                      f"{_number(item.get('users_done'))}/{_number(item.get('users_total'))}",
                      str(_number(item.get("users_failed"))), str(_number(item.get("users_skipped"))),
                      human_bytes(item.get("bytes_scanned")), human_bytes(item.get("bytes_read")),
                      human_bytes(item.get("bytes_new")), item.get("completed_at", ""))
    return table


# --- restore ----------------------------------------------------------------------------------

def parse_at(value: str) -> datetime:
    """A date (the end of that day, UTC) or an ISO 8601 time."""
    try:
        if len(value) == 10:
            return datetime.combine(datetime.fromisoformat(value).date(), day_time(23, 59, 59), timezone.utc)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise UserError(f"--at {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None


def replica_target(env: Environment) -> tuple[object, str]:
    """The replica bucket and a client for it, from the replica stack alone: the disaster-recovery
    path needs nothing from the primary region."""
    outputs = stack.outputs_of(aws.client(env, "cloudformation", env.replica_region), env.replica_stack_name)
    if not outputs or not outputs.get(layout.OUTPUT_REPLICA_BUCKET):
        raise UserError(f"replica stack {env.replica_stack_name} in {env.replica_region} has no "
                        f"{layout.OUTPUT_REPLICA_BUCKET} output")
    return aws.client(env, "s3", env.replica_region), outputs[layout.OUTPUT_REPLICA_BUCKET]


def restore(s3, bucket: str, *, user: str, to: str, run_id: str | None = None, at: datetime | None = None,
            path_prefix: str | None = None, console: Console | None = None, threads: int = 8):
    console = console or Console()
    if run_id is not None and not naming.is_run_id(run_id):
        raise UserError(f"--run {run_id!r} is not a run ID (like 20261125T020000Z)")
    if not naming.is_valid_user(user):
        raise UserError(f"not a user name: {user!r}")
    try:
        manifest = load_for_restore(s3, bucket, user, run_id=run_id, at=at)
    except (RestoreError, ManifestError) as exc:
        raise UserError(str(exc)) from None
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


# --- verify and prune ---------------------------------------------------------------------------

def run_verify(target: Deployed, *, sample_percent: float, console: Console | None = None):
    console = console or Console()
    if not 0 <= sample_percent <= 100:
        raise UserError(f"--sample must be between 0 and 100, got {sample_percent}")
    with console.status("verifying manifests, content and index"):
        report = verify(target.clients, target.settings, sample_percent=sample_percent)
    console.print(f"{report.manifests} manifest(s), {report.content_referenced} distinct content referenced, "
                  f"{report.content_objects} content object(s) stored, {report.sampled} re-hashed")
    if not report.ok:
        for problem in report.problems[:MAX_LISTED_PROBLEMS]:
            console.print(f"[red]problem[/red] {problem}")
        raise UserError(f"verify found {len(report.problems)} problem(s)")
    console.print("[green]verify: no problems[/green]")
    return report


def run_prune(target: Deployed, *, dry_run: bool, console: Console | None = None):
    console = console or Console()
    try:
        report = prune(target.clients, target.settings, dry_run=dry_run)
    except PruneAborted as exc:
        raise UserError(str(exc)) from None
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{report.manifests_total} manifest(s): {report.manifests_kept} kept, "
                  f"{len(report.manifests_expired)} expired ({verb})")
    console.print(f"{report.content_entries} content entries: {len(report.content_deleted)} unreferenced "
                  f"({verb}, {human_bytes(report.bytes_deleted)}), {report.content_in_grace} unreferenced but "
                  f"inside the {target.settings.gc_grace_hours}-hour grace period")
    if dry_run:
        for key in report.manifests_expired[:20]:
            console.print(f"  would delete {key}")
        for sha in report.content_deleted[:20]:
            console.print(f"  would delete {naming.content_key(sha)}")
    if report.unreadable_manifests:
        for key in report.unreadable_manifests[:MAX_LISTED_PROBLEMS]:
            console.print(f"[red]unreadable[/red] {key}")
        raise UserError(f"{len(report.unreadable_manifests)} kept manifest(s) unreadable: no content deleted")
    return report


# --- the commands, one function each (cli.py only parses options) ------------------------------

def command_run(env: Environment, users: str | None) -> None:
    console = Console()
    chosen = [u.strip() for u in users.split(",") if u.strip()] if users else None
    result = run_backup(deployed(env), users=chosen, console=console)
    console.print(run_table(result.record, result))
    check_run(result.record, env)


def command_runs(env: Environment, user: str | None, run_id: str | None, limit: int) -> None:
    if run_id is not None and not naming.is_run_id(run_id):
        raise UserError(f"--run {run_id!r} is not a run ID (like 20261125T020000Z)")
    Console().print(runs_table(deployed(env), user=user, run_id=run_id, limit=limit))


def command_restore(env: Environment, *, user: str, to: str, run_id: str | None, at: str | None,
                    path_prefix: str | None, from_replica: bool) -> None:
    if run_id and at:
        raise UserError("give --run or --at, not both")
    moment = parse_at(at) if at else None
    if from_replica:
        s3, bucket = replica_target(env)
    else:
        target = deployed(env)
        s3, bucket = target.clients.s3, target.settings.backup_bucket
    restore(s3, bucket, user=user, to=to, run_id=run_id, at=moment, path_prefix=path_prefix)


def command_verify(env: Environment, sample_percent: float) -> None:
    run_verify(deployed(env), sample_percent=sample_percent)


def command_prune(env: Environment, dry_run: bool) -> None:
    run_prune(deployed(env), dry_run=dry_run)


def command_demo_data(env: Environment, *, users: int, day: int, seed: int) -> None:
    from backup_cfn import demodata

    if users < 1 or day < 1:
        raise UserError("--users and --day must be at least 1")
    target = deployed(env)
    console = Console()
    with Progress(TextColumn(f"day {day}: uploading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("upload", total=None)
        report = demodata.generate(target.clients.s3, target.settings.source_bucket, users=users, day=day,
                                   seed=seed, progress=lambda n: progress.update(task, advance=n))
    console.print(f"s3://{target.settings.source_bucket} now holds day {day}: {report.users} users, "
                  f"{report.files} files, {human_bytes(report.bytes)} (uploaded {report.uploaded}, "
                  f"deleted {report.deleted})")
