"""`backup-cfn compare`: what changed in a user's files between two runs or two points in time
(a run ID, or a date or time: the files then, journal included), like `restic diff`: added (+),
removed (-), modified content (M) and metadata-only changes (U), then the totals."""
from __future__ import annotations

from rich.console import Console

from backup_cfn.config import Environment
from backup_cfn.engine.history import ADDED, METADATA, MODIFIED, REMOVED, compare
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes
from backup_cfn.output import print_json, print_line
from backup_cfn.ops.selection import run_or_time
from backup_cfn.ops.target import connect

MARKS = {ADDED: "+", REMOVED: "-", MODIFIED: "M", METADATA: "U"}


def do_compare(env: Environment, *, console: Console, user: str, run_a: str, run_b: str,
               as_json: bool = False) -> dict:
    if run_a == run_b:
        raise UserError(f"compare needs two different runs or times, got {run_a} twice")
    target = connect(env)
    s3, bucket, window = target.clients.s3, target.settings.backup_bucket, target.settings.window_start()
    comparison = compare(run_or_time(s3, bucket, user, run_a, window), run_or_time(s3, bucket, user, run_b, window))
    totals = comparison.totals()
    document = {"user": user, "run_a": run_a, "run_b": run_b,
                "changes": [c.to_json() for c in comparison.changes], "totals": totals}
    if as_json:
        return print_json("compare", document)
    print_line(console, f"comparing {user}: {run_a} -> {run_b}")
    for change in comparison.changes:
        if change.kind == ADDED:
            sizes = human_bytes(change.after.size)
        elif change.kind == REMOVED:
            sizes = human_bytes(change.before.size)
        elif change.kind == MODIFIED:
            sizes = f"{human_bytes(change.before.size)} -> {human_bytes(change.after.size)}"
        else:
            sizes = ", ".join(change.fields)
        print_line(console, f"{MARKS[change.kind]}  {change.path}  ({sizes})")
    print_line(console, f"added {totals['added']} ({human_bytes(totals['added_bytes'])}), removed {totals['removed']} "
                        f"({human_bytes(totals['removed_bytes'])}), modified {totals['modified']} "
                        f"({human_bytes(totals['modified_bytes_before'])} -> "
                        f"{human_bytes(totals['modified_bytes_after'])}), metadata only {totals['metadata']}, "
                        f"unchanged {totals['unchanged']}")
    print_line(console, f"files {totals['files_a']} -> {totals['files_b']}, {human_bytes(totals['bytes_a'])} -> "
                        f"{human_bytes(totals['bytes_b'])}")
    return document
