"""`backup-cfn runs`: recent runs and drills with their figures, one user's history, or one run
(an unfinished one with the users it still waits for) or drill; as tables, or with --json as one
document (docs/json.md). A run in which nothing has moved for longer than any job may take is
STALLED."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.engine import drill as drills, runs
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes, number, share
from backup_cfn.output import plain, print_json, print_line, print_table
from backup_cfn.ops.selection import check_run_id, check_user
from backup_cfn.ops.target import DeployedEnvironment, connect

RUN_FIELDS = ("run_id", "status", "trigger", "started_at", "enqueued_at", "completed_at", "previous_run_id",
              "users_total", "users_pending", "users_done", "users_failed", "users_skipped", *runs.STAT_FIELDS)
JOB_FIELDS = ("run_id", "user", "status", "started_at", "finished_at", "attempts", "reason", "last_error",
              *runs.STAT_FIELDS)
DRILL_FIELDS = ("drill_id", "result", "trigger", "started_at", "completed_at", "seconds", "users_asked",
                "users_sampled", "snapshots", "files", "contents", "bytes", "problems_total", "problems")
_COUNTS = {"users_total", "users_pending", "users_done", "users_failed", "users_skipped", "attempts",
           *runs.STAT_FIELDS, "users_asked", "users_sampled", "files", "contents", "bytes", "problems_total"}


def _fields(record: dict, names: tuple[str, ...]) -> dict:
    """A record with exactly the documented keys: counts as numbers (0 when absent), others or null."""
    return {name: (number(record.get(name)) if name in _COUNTS else plain(record.get(name))) for name in names}


def run_json(record: dict, settings=None) -> dict:
    """A run record as documented; `stalled` when nothing has moved in the unfinished run for longer
    than any one job may take (engine/runs.py, is_stalled): its pending users need an operator."""
    return {**_fields(record, RUN_FIELDS), "stalled": bool(settings and runs.is_stalled(record, settings))}


def shown_status(run: dict) -> str:
    return "STALLED" if run.get("stalled") else (run.get("status") or "")


def pending_users(target: DeployedEnvironment, run_id: str, users: list[str] | None = None) -> list[dict]:
    """The users a run still waits for: those a job record names (state, attempts, last error), and,
    when the run named its users, those no attempt has reached."""
    jobs = runs.user_jobs(target.clients.dynamodb, target.settings, run_id)
    pending = []
    for job in filter(runs.is_pending, jobs):
        state = "handed on" if job.get("next_part") else (job.get("status") or "waiting for a retry").lower()
        pending.append({"user": job.get("user", ""), "state": state, "attempts": number(job.get("attempts")),
                        "last_error": plain(job.get("last_error"))})
    if users:
        recorded = {job.get("user") for job in jobs}
        pending += [{"user": u, "state": "not started", "attempts": 0, "last_error": None}
                    for u in users if u not in recorded]
    return pending


MAX_LISTED_USERS = 20


def pending_table(run_id: str, pending: list[dict]) -> Table:
    table = Table(title=f"run {run_id}: users still pending")
    for column in ("user", "state", "attempts", "last error"):
        table.add_column(column)
    for job in pending[:MAX_LISTED_USERS]:
        table.add_row(job["user"], job["state"], str(job["attempts"]), (job["last_error"] or "")[:120])
    if len(pending) > MAX_LISTED_USERS:
        table.add_row(f"... and {len(pending) - MAX_LISTED_USERS} more", "", "", "")
    return table


def job_json(record: dict) -> dict:
    return _fields(record, JOB_FIELDS)


def drill_json(record: dict) -> dict:
    return _fields({**record, "drill_id": record.get("drill_id") or record.get(contract.RUNS_PARTITION_KEY)},
                   DRILL_FIELDS)


def runs_document(target: DeployedEnvironment, *, user: str | None = None, run_id: str | None = None,
                  limit: int = 10) -> tuple[str, dict]:
    """(schema, body) of what `runs` shows (docs/json.md)."""
    dynamodb, settings = target.clients.dynamodb, target.settings
    if user:
        check_user(user)
        items = runs.user_history(dynamodb, settings, user, limit)
        if not items:
            raise UserError(f"no runs recorded for user {user!r}")
        return "user-runs", {"user": user, "jobs": [job_json(i) for i in items]}
    if run_id:
        record = runs.get_run(dynamodb, settings, run_id)
        if record is not None:
            unfinished = record.get("status") not in runs.FINAL_RUN_STATUSES
            return "run", {"run": run_json(record, settings), "measured": None,
                           "pending_users": pending_users(target, run_id) if unfinished else []}
        drill = drills.get_drill(dynamodb, settings, run_id)
        if drill is not None:
            return "drill", {"drill": drill_json(drill)}
        raise UserError(f"no run or drill {run_id}")
    return "runs", {"stack": target.env.stack_name,
                    "runs": [run_json(r, settings) for r in runs.recent_runs(dynamodb, settings, limit)],
                    "drills": [drill_json(d) for d in drills.recent_drills(dynamodb, settings, limit)]}


def run_table(run: dict, measured: dict | None = None) -> Table:
    """One run's figures (a run_json record) and, for `run`, what this process measured."""
    table = Table(title=f"run {run['run_id']}: {shown_status(run)}", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    scanned = run["bytes_scanned"]
    rows = [
        ("users backed up", f"{run['users_done']} of {run['users_total']}"),
        ("users failed", str(run["users_failed"])),
        ("users skipped", str(run["users_skipped"])),
        ("users pending", str(run["users_pending"])),
        ("files", f"{run['files_total']} ({run['files_changed']} new or changed)"),
        ("source size", human_bytes(scanned)),
        ("bytes read", share(run["bytes_read"], scanned)),
        ("bytes stored new", share(run["bytes_new"], scanned)),
        ("bytes deduplicated", share(run["bytes_deduplicated"], scanned)),
    ]
    if measured and measured.get("s3_requests") is not None:
        by_operation = ", ".join(f"{k} {v}" for k, v in measured["s3_requests_by_operation"].items())
        rows.append(("S3 requests", f"{measured['s3_requests']}  ({by_operation})"))
    if measured:
        rows.append(("time", f"{measured['seconds']:.1f} s"))
    for row in rows:
        table.add_row(*row)
    return table


SNAPSHOTS_SHOWN = 5


def _first(items: list[str], count: int) -> str:
    shown = ", ".join(items[:count]) or "none"
    return shown + (f" (+{len(items) - count} more)" if len(items) > count else "")


def drill_table(drill: dict) -> Table:
    table = Table(title=f"drill {drill['drill_id']}: {drill['result']}", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for row in (("users sampled", f"{drill['users_sampled']} (asked {drill['users_asked']})"),
                ("files", str(drill["files"])),
                ("content objects re-hashed", f"{drill['contents']} ({human_bytes(drill['bytes'])})"),
                ("problems", str(drill["problems_total"])),
                ("time", f"{drill['seconds']:.1f} s"),
                ("trigger", drill["trigger"] or "")):
        table.add_row(*row)
    return table


def tables(schema: str, body: dict) -> list[Table]:
    """What `runs` shows, as tables: the runs (and drills), a user's jobs, one run or one drill."""
    if schema == "run":
        pending = body.get("pending_users")
        return [run_table(body["run"], body.get("measured"))] + \
            ([pending_table(body["run"]["run_id"], pending)] if pending else [])
    if schema == "drill":
        return [drill_table(body["drill"])]
    if schema == "user-runs":
        table = Table(title=f"user {body['user']}: last {len(body['jobs'])} runs")
        for column in ("run", "status", "files", "changed", "size", "read", "stored new", "reason"):
            table.add_column(column, no_wrap=column == "run")
        for job in body["jobs"]:
            table.add_row(job["run_id"], job["status"] or "", str(job["files_total"]), str(job["files_changed"]),
                          human_bytes(job["bytes_scanned"]), human_bytes(job["bytes_read"]),
                          human_bytes(job["bytes_new"]), job["reason"] or job["last_error"] or "")
        return [table]
    table = Table(title=f"{body['stack']}: last {len(body['runs'])} runs")
    for column in ("run", "status", "users", "failed", "skipped", "size", "read", "stored new", "completed"):
        table.add_column(column, no_wrap=column in ("run", "completed"))
    for run in body["runs"]:
        table.add_row(run["run_id"], shown_status(run), f"{run['users_done']}/{run['users_total']}",
                      str(run["users_failed"]), str(run["users_skipped"]), human_bytes(run["bytes_scanned"]),
                      human_bytes(run["bytes_read"]), human_bytes(run["bytes_new"]), run["completed_at"] or "")
    if not body["drills"]:
        return [table]
    drills_table = Table(title=f"{body['stack']}: last {len(body['drills'])} restore drills")
    for column in ("drill", "result", "users", "files", "content re-hashed", "problems", "time", "trigger"):
        drills_table.add_column(column, no_wrap=column == "drill")
    for drill in body["drills"]:
        drills_table.add_row(drill["drill_id"], drill["result"] or "", str(drill["users_sampled"]), str(drill["files"]),
                             f"{drill['contents']} ({human_bytes(drill['bytes'])})", str(drill["problems_total"]),
                             f"{drill['seconds']:.1f} s", drill["trigger"] or "")
    return [table, drills_table]


def runs_table(target: DeployedEnvironment, *, user: str | None = None, run_id: str | None = None,
               limit: int = 10) -> Table:
    """The first table `runs` shows (the runs, a user's jobs, or one run or drill)."""
    return tables(*runs_document(target, user=user, run_id=run_id, limit=limit))[0]


def print_runs(console: Console, schema: str, body: dict) -> None:
    for table in tables(schema, body):
        print_table(console, table)
    if schema == "drill":
        print_line(console, f"snapshots drilled: {_first(body['drill']['snapshots'], SNAPSHOTS_SHOWN)}")
        for problem in body["drill"]["problems"]:
            print_line(console, f"problem: {problem}")


def do_runs(env: Environment, *, console: Console, user: str | None = None, run_id: str | None = None,
            limit: int = 10, as_json: bool = False) -> dict:
    check_run_id(run_id)
    schema, body = runs_document(connect(env), user=user, run_id=run_id, limit=limit)
    if as_json:
        return print_json(schema, body)
    print_runs(console, schema, body)
    return body
