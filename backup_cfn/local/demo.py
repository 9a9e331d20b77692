"""`make demo`: the whole system offline, start to finish, on a private server.

Start the emulator, deploy the `local` environment (its vault in a second account, then the
primary), generate a day of client reports for 1,000 users, back them up; then continuous
protection: a report revised and protected in seconds, without a run; change a day of data, back up
again (incremental), restore one user as it was at the minute between the two runs and as of the
last run, each compared byte for byte with the source as it was, wait for S3 replication into the
vault account, lock what the vault keeps, restore the same user from the vault alone with the
vault's credentials (as of the last run, and at that minute), verify both copies, stop the server.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from backup_cfn.config import load_environment
from backup_cfn.errors import UserError
from backup_cfn.engine import journal, naming
from backup_cfn.local import server
from backup_cfn.local.capture_source import for_deployed, take_over
from backup_cfn.local.runner import run_in_process
from backup_cfn.ops import demo_data
from backup_cfn.ops.format import human_bytes
from backup_cfn.engine.vault import vault_catalog
from backup_cfn.local.vault import run_vault_function_in_process
from backup_cfn.ops.restore import restore
from backup_cfn.ops.vault import connect_vault
from backup_cfn.ops.run import check_run, run_backup, run_table
from backup_cfn.ops.target import DeployedEnvironment, connect
from backup_cfn.ops.verify import run_verify


def step(console: Console, text: str) -> None:
    console.rule(f"[bold]{text}")


def generate(console: Console, target: DeployedEnvironment, users: int, day: int, seed: int) -> demo_data.GenerateReport:
    with Progress(TextColumn(f"day {day}: uploading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("upload", total=None)
        report = demo_data.generate(target.clients.s3, target.settings.source_bucket, users=users, day=day, seed=seed,
                                   progress=lambda n: progress.update(task, advance=n))
        progress.update(task, total=report.uploaded, completed=report.uploaded)
    console.print(f"source on day {day}: {report.users} users, {report.files} files, "
                  f"{human_bytes(report.bytes)}; uploaded {report.uploaded} file(s) "
                  f"({human_bytes(report.uploaded_bytes)}), deleted {report.deleted}")
    return report


def source_files(target: DeployedEnvironment, user: str) -> dict[str, bytes]:
    """The user's files in the source bucket now."""
    s3, bucket = target.clients.s3, target.settings.source_bucket
    files = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{user}/"):
        for obj in page.get("Contents", []):
            files[obj["Key"][len(user) + 1:]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return files


def compare_with_source(target: DeployedEnvironment, user: str, directory: Path,
                        expected: dict[str, bytes] | None = None) -> tuple[int, int]:
    """(files, bytes) identical between the restored directory and the source bucket (or `expected`,
    the source as it was); raises on any difference."""
    return compare_with(source_files(target, user) if expected is None else expected, directory)


def compare_with(expected: dict[str, bytes], directory: Path) -> tuple[int, int]:
    """(files, bytes) identical between the restored directory and the files expected; raises on any difference."""
    restored = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}
    if restored != set(expected):
        raise UserError(f"restored files differ from the source: {sorted(restored ^ set(expected))[:5]}")
    for path, data in expected.items():
        if (directory / path).read_bytes() != data:
            raise UserError(f"restored {path} differs from the source")
    return len(expected), sum(len(data) for data in expected.values())


def protect_a_change(console: Console, target: DeployedEnvironment, user: str) -> tuple[datetime, dict[str, bytes]]:
    """Continuous protection: one report revised, captured through S3's events by the capture
    function (its event source mapping stood in for, as on AWS), no run. Returns the minute after it
    and the user's files then."""
    s3, source, backup = target.clients.s3, target.settings.source_bucket, target.settings.backup_bucket
    path = "reports/revised-after-the-run.pdf"
    # The stack existed before the demo's day 1 was uploaded, so S3's events of those uploads wait on
    # the capture queue; run 1 holds them all. Dropped here, as when continuous protection is
    # switched on after a first full backup.
    waiting = int(target.clients.sqs.get_queue_attributes(
        QueueUrl=target.settings.capture_queue_url,
        AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
    target.clients.sqs.purge_queue(QueueUrl=target.settings.capture_queue_url)
    console.print(f"the {waiting} events of day 1's uploads are dropped from the capture queue: run 1 holds them")
    with for_deployed(target, concurrency=2):
        written = time.monotonic()
        s3.put_object(Bucket=source, Key=f"{user}/{path}", Body=b"a report revised between two runs\n" * 100)
        protected = None
        while protected is None and time.monotonic() - written < 120:
            for ref in journal.list_segments(s3, backup, user):
                if any(c.path == path for c in journal.read_segment(s3, backup, ref.key).changes):
                    protected = time.monotonic() - written
            time.sleep(0.2)
    if protected is None:
        raise UserError(f"{user}/{path} was not captured within 120 s")
    console.print(f"[bold]continuous protection:[/bold] {user}/{path} written and protected (content stored, "
                  f"journal written) in {protected:.1f} s, without a run")
    time.sleep(1)   # the minute asked for below is strictly after the change's second
    return datetime.now(timezone.utc).replace(microsecond=0), source_files(target, user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backup_cfn.local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    args = parser.parse_args(argv)
    console = Console()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    started = time.monotonic()
    port = args.port or server.free_port()
    step(console, f"1. start the emulator on port {port}")
    server.start(port)
    try:
        env = dataclasses.replace(load_environment("local"), endpoint_url=server.url(port))
        step(console, f"2. deploy the local environment: the vault (account {env.vault.account_id}, its own "
                      "credentials), then the primary")
        target = deploy(env, console)

        step(console, f"3. day 1: client reports for {args.users} users")
        day1 = generate(console, target, args.users, 1, args.seed)
        # Run 1 as the nightly schedule's, the last 02:00 before now; run 2 on demand after the day's
        # churn, at the time it starts. Neither is in the future: the vault leaves out a snapshot
        # written before its run (docs/vault.md, "Tamper-evident, self-healing reads"), and the minute restored between
        # them must be one the journal captured in real time.
        night = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
        night -= timedelta(days=1) if night > datetime.now(timezone.utc) else timedelta(0)
        step(console, "4. backup run 1 (everything is new)")
        first = run_backup(target, runner=run_in_process, console=console, moment=night)
        console.print(run_table(first.record, first))
        check_run(first.record, env)

        user = demo_data.user_name(1)
        step(console, f"5. continuous protection: {user} revises a report between two runs")
        between, files_between = protect_a_change(console, target, user)

        step(console, "6. day 2: a day of churn (revised, new and deleted files)")
        day2 = generate(console, target, args.users, 2, args.seed)
        step(console, "7. backup run 2, on demand (incremental)")
        second = run_backup(target, runner=run_in_process, console=console,
                            moment=datetime.now(timezone.utc).replace(microsecond=0))
        console.print(run_table(second.record, second))
        check_run(second.record, env)
        record = second.record
        console.print(f"[bold]incremental:[/bold] read {human_bytes(record['bytes_read'])} and stored "
                      f"{human_bytes(record['bytes_new'])} new, of a {human_bytes(day2.bytes)} source, "
                      f"with {second.s3_requests} S3 requests ({second.s3_requests / max(1, day2.files):.2f} per file)")

        step(console, f"8. restore {user} as at {naming.iso(between)}, between the two runs, and as of run 2")
        with tempfile.TemporaryDirectory(prefix="backup-cfn-demo-") as directory:
            restore(target.clients.s3, target.settings.backup_bucket, user=user, to=f"{directory}/at", at=between,
                    console=console, window_start=target.settings.window_start())
            files, size = compare_with_source(target, user, Path(directory) / "at", files_between)
            console.print(f"[green]{files} files, {human_bytes(size)}: byte for byte the source at that minute "
                          f"(run 1 plus the journal; neither run holds this state)[/green]")
            restore(target.clients.s3, target.settings.backup_bucket, user=user, to=f"{directory}/now", console=console)
            files, size = compare_with_source(target, user, Path(directory) / "now")
            console.print(f"[green]{files} files, {human_bytes(size)}: byte for byte identical to the source[/green]")

        expected = source_files(target, user)
        step(console, f"9. replication into the vault (account {env.vault.account_id}); the vault locks what it keeps")
        replicated = server.wait_for_replication(env.endpoint_url, timeout=600)
        if replicated["failed"]:
            raise UserError(f"replication failed {replicated['failed']} time(s): {replicated['failures'][-1]}")
        console.print(f"S3 replication: {replicated['completed']} writes replicated, "
                      f"{replicated['lag_seconds_mean']:.2f} s after the write on average, "
                      f"{replicated['lag_seconds_max']:.1f} s at most")
        vault = connect_vault(env)
        began = time.monotonic()
        locks = run_vault_function_in_process(vault, "lock", {})
        console.print(f"lock pass: {locks['points_kept']} snapshots kept, {locks['points_locked']} locked "
                      f"({locks['objects_extended']} compliance locks extended, {locks['objects_checked']} objects "
                      f"checked), {locks['late']} late, {locks['tampered']} written over, in "
                      f"{time.monotonic() - began:.1f} s")

        step(console, f"10. production account lost: restore {user} from the vault, as of run 2 and at "
                      f"{naming.iso(between)}")
        with tempfile.TemporaryDirectory(prefix="backup-cfn-demo-vault-") as directory:
            catalog = vault_catalog(vault.clients.s3, vault.settings.bucket,
                                    max_arrival_hours=vault.settings.max_arrival_hours)
            restore(vault.clients.s3, vault.settings.bucket, user=user, to=f"{directory}/now", console=console,
                    vault=catalog)
            files, size = compare_with(expected, Path(directory) / "now")
            console.print(f"[green]{files} files, {human_bytes(size)} from the vault alone, with its own credentials: "
                          f"byte for byte identical to the source[/green]")
            restore(vault.clients.s3, vault.settings.bucket, user=user, to=f"{directory}/at", at=between,
                    console=console, vault=catalog)
            files, size = compare_with(files_between, Path(directory) / "at")
            console.print(f"[green]{files} files, {human_bytes(size)} from the vault at that minute: byte for byte "
                          f"the source then[/green]")

        step(console, "11. verify the backups (5% re-hashed) and the vault (versions, locks)")
        for copy in (target, vault):
            began = time.monotonic()
            run_verify(copy, sample_percent=5, console=console)
            console.print(f"[dim]{time.monotonic() - began:.1f} s[/dim]")
    finally:
        step(console, "12. stop the emulator")
        server.stop(port)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s (day 1 source "
                  f"{human_bytes(day1.bytes)}, {day1.files} files)")
    return 0


def deploy(env, console: Console) -> DeployedEnvironment:
    """The deploy command's own code path, with its change-set output kept short."""
    from backup_cfn.deploy.clients import DeployClients
    from backup_cfn.deploy.deployment import Deployment
    from backup_cfn.deploy.stack_spec import Options

    began = time.monotonic()
    quiet = Console(quiet=True)
    Deployment(env, DeployClients.for_vault(env), quiet, validate=False).run(Options(yes=True), vault=True)
    Deployment(env, DeployClients.for_environment(env), quiet).run(Options(yes=True))
    target = connect(env)
    take_over(target)   # the capture queue is this demo's stand-in's, not moto's (local/capture_source.py)
    console.print(f"deployed {env.vault.stack_name} (account {env.vault.account_id}) and {env.stack_name} in "
                  f"{time.monotonic() - began:.1f} s; backup bucket {target.settings.backup_bucket}, vault bucket "
                  f"{env.vault.bucket_name}")
    return target


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        sys.exit(1)
