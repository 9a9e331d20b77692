"""`backup-cfn runs`: recent runs and their figures, one user's history, or one run (an unfinished
one with the users it still waits for). A run that has outlived its deadline shows as STALLED."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from backup_cfn.config import Environment
from backup_cfn.engine import naming, runs
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes, number
from backup_cfn.ops.run import run_table, stuck_users_table
from backup_cfn.ops.target import DeployedEnvironment, connect


def runs_table(target: DeployedEnvironment, *, user: str | None = None, run_id: str | None = None, limit: int = 10) -> Table:
    if user:
        items = runs.user_history(target.clients.dynamodb, target.settings, user, limit)
        if not items:
            raise UserError(f"no runs recorded for user {user!r}")
        table = Table(title=f"user {user}: last {len(items)} runs")
        for column in ("run", "status", "files", "changed", "size", "read", "stored new", "reason"):
            table.add_column(column)
        for item in items:
            table.add_row(item["run_id"], item.get("status", ""), str(number(item.get("files_total"))),
                          str(number(item.get("files_changed"))), human_bytes(item.get("bytes_scanned")),
                          human_bytes(item.get("bytes_read")), human_bytes(item.get("bytes_new")),
                          item.get("reason") or item.get("last_error") or "")
        return table
    if run_id:
        record = runs.get_run(target.clients.dynamodb, target.settings, run_id)
        if record is None:
            raise UserError(f"no run {run_id}")
        if record.get("status") in runs.FINAL_RUN_STATUSES:
            return run_table(record)
        # An unfinished run: its figures, then the users it still waits for.
        grid = Table.grid()
        grid.add_row(run_table(record, status=display_status(record, target)))
        grid.add_row(stuck_users_table(target, run_id))
        return grid
    items = runs.recent_runs(target.clients.dynamodb, target.settings, limit)
    table = Table(title=f"{target.env.stack_name}: last {len(items)} runs")
    for column in ("run", "status", "users", "failed", "skipped", "size", "read", "stored new", "completed"):
        table.add_column(column)
    for item in items:
        table.add_row(item["run_id"], display_status(item, target),
                      f"{number(item.get('users_done'))}/{number(item.get('users_total'))}",
                      str(number(item.get("users_failed"))), str(number(item.get("users_skipped"))),
                      human_bytes(item.get("bytes_scanned")), human_bytes(item.get("bytes_read")),
                      human_bytes(item.get("bytes_new")), item.get("completed_at", ""))
    return table


def display_status(record: dict, target: DeployedEnvironment) -> str:
    """The run's status, or STALLED for an unfinished run in which nothing has moved for longer than
    any one job may take (engine/runs.py, is_stalled): its pending users need an operator."""
    return "STALLED" if runs.is_stalled(record, target.settings) else record.get("status", "")


def do_runs(env: Environment, *, console: Console, user: str | None = None, run_id: str | None = None,
            limit: int = 10) -> None:
    if run_id is not None and not naming.is_run_id(run_id):
        raise UserError(f"--run {run_id!r} is not a run ID (like 20261125T020000Z)")
    console.print(runs_table(connect(env), user=user, run_id=run_id, limit=limit))
