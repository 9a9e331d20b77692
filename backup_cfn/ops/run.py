"""`backup-cfn run`: start a backup now and follow it to its end, with users done, failed and
pending shown as they change, and a deadline: when nothing has moved for `--timeout` seconds the
command stops, lists the users still pending and exits 1. How the run is driven is a BackupRunner
handed in by whoever wires the command: run_on_aws here (the deployed functions), or the emulator's
in-process runner (backup_cfn.local.runner.run_in_process)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from backup_cfn import aws, contract
from backup_cfn.config import Environment
from backup_cfn.engine import attempts, naming, runs
from backup_cfn.engine.initiator import scheduled_event
from backup_cfn.engine.settings import RequestCounter, Settings
from backup_cfn.errors import RunStuck, UserError
from backup_cfn.ops import runs as runs_view
from backup_cfn.ops.format import number
from backup_cfn.output import print_json, print_table, side_console
from backup_cfn.ops.runs import run_json
from backup_cfn.ops.target import DeployedEnvironment, connect

AWS_POLL_SECONDS = 5

# Starts the run of `moment` and drives it to its end: (target, moment, users, counter, refresh,
# timeout_seconds=...) -> None; raises RunStuck when nothing moves for timeout_seconds.
BackupRunner = Callable[..., None]


@dataclass
class RunResult:
    record: dict
    s3_requests: int | None          # counted when the run's requests went through this process
    s3_requests_by_operation: dict
    seconds: float

    def measured(self) -> dict:
        return {"s3_requests": self.s3_requests, "s3_requests_by_operation": dict(self.s3_requests_by_operation),
                "seconds": round(self.seconds, 3)}


def default_timeout(settings: Settings) -> int:
    """How long a run may go without any user finishing before it is given up on: the longest one
    job can take from its first delivery to its recorded outcome with this environment's retries
    (engine/attempts.py), which also covers the initiator's own timeout and retries."""
    initiator = contract.INITIATOR_TIMEOUT_SECONDS * (1 + contract.ASYNC_INVOKE_RETRIES) + 180
    return max(attempts.worst_case_outcome_seconds(settings), initiator)


def run_backup(target: DeployedEnvironment, *, runner: BackupRunner, users: list[str] | None = None,
               console: Console | None = None, moment: datetime | None = None, timeout: int | None = None) -> RunResult:
    """Start a run now and follow it to the end."""
    console = console or Console()
    moment = (moment or datetime.now(timezone.utc)).replace(microsecond=0)
    run_id = naming.run_id_for(moment)
    timeout = timeout or default_timeout(target.settings)
    started = time.monotonic()
    counter = RequestCounter()
    if users:
        bad = [u for u in users if not naming.is_valid_user(u)]
        if bad:
            raise UserError(f"not a user name: {bad[0]!r} (users are top-level prefixes of the source bucket, no '/')")
    with _progress(console) as progress:
        task = progress.add_task(f"run {run_id}", total=None, done=0, failed=0, pending="?")

        def refresh() -> dict | None:
            record = runs.get_run(target.clients.dynamodb, target.settings, run_id)
            if record:
                done, failed = number(record.get("users_done")) + number(record.get("users_skipped")), \
                    number(record.get("users_failed"))
                progress.update(task, total=number(record.get("users_total")), completed=done + failed, done=done,
                                failed=failed, pending=number(record.get("users_pending")))
            return record

        try:
            runner(target, moment, users, counter, refresh, timeout_seconds=timeout)
        except RunStuck:
            progress.stop()
            console.print(runs_view.pending_table(run_id, runs_view.pending_users(target, run_id, users)))
            raise
        record = refresh()
    if record is None:
        raise UserError(f"run {run_id} was not recorded; see the initiator's log")
    s3_requests = counter.total("s3") or None
    return RunResult(record, s3_requests, counter.by_operation("s3"), time.monotonic() - started)


def run_on_aws(target: DeployedEnvironment, moment: datetime, users: list[str] | None, counter: RequestCounter,
               refresh: Callable[[], dict | None], *, timeout_seconds: int) -> None:
    """Invoke the deployed initiator asynchronously (Lambda queues the event and retries it; a
    synchronous call would time out on a slow initiator and be sent again) and follow the runs
    table until the run is closed, or until nothing has moved for `timeout_seconds`."""
    function = target.outputs.get(contract.OUTPUT_INITIATOR)
    if not function:
        raise UserError(f"stack {target.env.stack_name} has no output {contract.OUTPUT_INITIATOR}")
    event = scheduled_event(moment, users=users, region=target.env.region, account=target.env.account_id or "")
    response = aws.client(target.env, "lambda").invoke(FunctionName=function, InvocationType="Event",
                                                       Payload=json.dumps(event).encode())
    if response.get("StatusCode") != 202:
        raise UserError(f"Lambda did not accept the initiator's invocation (status {response.get('StatusCode')})")
    follow_run(refresh, timeout_seconds=timeout_seconds, run_id=naming.run_id_for(moment), poll=AWS_POLL_SECONDS)


def follow_run(refresh: Callable[[], dict | None], *, timeout_seconds: float, run_id: str, poll: float,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict:
    """Poll the run until it is closed; RunStuck when nothing moved (no record yet, no user
    finishing, no job handing on) for `timeout_seconds`."""
    seen, moved = None, clock()
    while True:
        record = refresh()
        if record and record.get("status") in runs.FINAL_RUN_STATUSES:
            return record
        state = (record or {}).get("status"), runs.last_activity(record or {}), \
            tuple(number((record or {}).get(k)) for k in ("users_done", "users_failed", "users_skipped"))
        if state != seen:
            seen, moved = state, clock()
        elif clock() - moved > timeout_seconds:
            if record is None:
                raise RunStuck(f"run {run_id} was not started within {timeout_seconds:.0f} s: see the initiator's "
                               "log and the FailedInvocationQueue")
            raise RunStuck(f"run {run_id} made no progress for {timeout_seconds:.0f} s; "
                           f"{number(record.get('users_pending'))} user(s) still pending (listed above)")
        sleep(poll)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("users:"),
                    TextColumn("{task.fields[done]} done, {task.fields[failed]} failed, {task.fields[pending]} pending"),
                    TimeElapsedColumn(), console=console, transient=False)


def run_table(record: dict, result: RunResult | None = None) -> Table:
    """The run's figures as a table, with what this process measured when it drove the run."""
    return runs_view.run_table(run_json(record), result.measured() if result else None)


def check_run(record: dict, env: Environment) -> None:
    failed = number(record.get("users_failed"))
    if failed:
        raise UserError(f"run {record['run_id']}: {failed} user(s) failed; see `backup-cfn runs --env {env.name} "
                        f"--run {record['run_id']}`")


def chosen_users(users: str | None) -> list[str] | None:
    """--users as a list; None (every user) only when the option is not given at all. An empty
    value (an unset shell variable, say) is an error, not a request to back up everyone."""
    if users is None:
        return None
    chosen = [u.strip() for u in users.split(",") if u.strip()]
    if not chosen:
        raise UserError(f"--users {users!r} names no user: give U1,U2,... or leave --users out to back up every user")
    return chosen


def do_run(env: Environment, *, console: Console, runner: BackupRunner, users: str | None = None,
           timeout: int | None = None, as_json: bool = False) -> RunResult:
    chosen = chosen_users(users)
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {timeout}")
    result = run_backup(connect(env), runner=runner, users=chosen, console=side_console(console, as_json), timeout=timeout)
    if as_json:
        print_json("run", {"run": run_json(result.record), "measured": result.measured(), "pending_users": []})
    else:
        print_table(console, run_table(result.record, result))
    check_run(result.record, env)
    return result
