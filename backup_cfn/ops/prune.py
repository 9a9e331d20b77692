"""`backup-cfn prune`: garbage collection now, or what it would delete."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from backup_cfn.config import Environment
from backup_cfn.engine import naming
from backup_cfn.engine.pruner import prune
from backup_cfn.engine.verify import MAX_LISTED_PROBLEMS
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes
from backup_cfn.output import print_table
from backup_cfn.ops.target import DeployedEnvironment, connect


def run_prune(target: DeployedEnvironment, *, dry_run: bool, console: Console | None = None):
    console = console or Console()
    report = prune(target.clients, target.settings, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{report.manifests_total} manifest(s): {report.manifests_kept} kept, "
                  f"{len(report.manifests_expired)} expired ({verb})")
    console.print(f"{report.journal_segments_total} journal segment(s): "
                  f"{report.journal_segments_total - len(report.journal_segments_expired)} kept (the retention window's "
                  f"changes), {len(report.journal_segments_expired)} older than its checkpoint ({verb})")
    console.print(f"{report.content_entries} content entries: {len(report.content_deleted)} unreferenced "
                  f"({verb}, {human_bytes(report.bytes_deleted)}), {report.content_in_grace} unreferenced but "
                  f"inside the {target.settings.gc_grace_hours}-hour grace period")
    if dry_run:
        table = Table(title="retention rules (a snapshot kept by any rule is kept)", title_justify="left")
        for column in ("rule", "keeps", "snapshots", "kept by this rule only"):
            table.add_column(column, justify="right" if column != "keeps" and column != "rule" else "left")
        for rule, (described, kept, only) in report.rules.items():
            table.add_row(rule, described, str(kept), str(only))
        table.add_section()
        table.add_row("expired", "kept by no rule: would be deleted", str(len(report.manifests_expired)), "")
        print_table(console, table)
        for key in report.manifests_expired[:20]:
            console.print(f"  would delete {key}")
        for sha in report.content_deleted[:20]:
            console.print(f"  would delete {naming.content_key(sha)}")
    unreadable = report.unreadable_manifests + report.unreadable_segments
    if unreadable:
        for key in unreadable[:MAX_LISTED_PROBLEMS]:
            console.print(f"[red]unreadable[/red] {key}")
        raise UserError(f"{len(report.unreadable_manifests)} kept manifest(s) and {len(report.unreadable_segments)} "
                        "kept journal segment(s) unreadable: no content deleted")
    return report


def do_prune(env: Environment, *, console: Console, dry_run: bool = False):
    return run_prune(connect(env), dry_run=dry_run, console=console)
