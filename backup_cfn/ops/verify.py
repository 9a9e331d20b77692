"""`backup-cfn verify`: every snapshot's content present and indexed, a sample re-hashed."""
from __future__ import annotations

from rich.console import Console

from backup_cfn.config import Environment
from backup_cfn.engine.verify import MAX_LISTED_PROBLEMS, verify, verify_vault
from backup_cfn.errors import UserError
from backup_cfn.output import print_json, side_console
from backup_cfn.ops.target import DeployedEnvironment, connect
from backup_cfn.ops.vault import VaultTarget, connect_vault


def verify_json(report, sample_percent: float) -> dict:
    return {"ok": report.ok, "manifests": report.manifests, "journal_segments": report.journal_segments,
            "content_referenced": report.content_referenced,
            "content_objects": report.content_objects, "sample_percent": sample_percent, "sampled": report.sampled,
            "problems_total": len(report.problems), "problems": report.problems}


def run_verify(target: DeployedEnvironment | VaultTarget, *, sample_percent: float, console: Console | None = None,
               as_json: bool = False):
    console = console or Console()
    if not 0 <= sample_percent <= 100:
        raise UserError(f"--sample must be between 0 and 100, got {sample_percent}")
    vault = isinstance(target, VaultTarget)
    with side_console(console, as_json).status("verifying the vault: first versions, content versions, locks" if vault
                                               else "verifying manifests, content and index"):
        report = (verify_vault(target.clients, target.settings, sample_percent=sample_percent) if vault
                  else verify(target.clients, target.settings, sample_percent=sample_percent))
    if as_json:
        print_json("verify", verify_json(report, sample_percent))
        if not report.ok:
            raise UserError(f"verify found {len(report.problems)} problem(s)")
        return report
    console.print(f"{report.manifests} manifest(s), {report.journal_segments} journal segment(s), "
                  f"{report.content_referenced} distinct content referenced, "
                  f"{report.content_objects} content object(s) stored, {report.sampled} re-hashed"
                  + (f", {report.locks_checked} lock(s) checked" if vault else ""))
    if not report.ok:
        for problem in report.problems[:MAX_LISTED_PROBLEMS]:
            console.print(f"[red]problem[/red] {problem}")
        raise UserError(f"verify found {len(report.problems)} problem(s)")
    console.print("[green]verify: no problems[/green]")
    return report


def do_verify(env: Environment, *, console: Console, sample_percent: float = 5.0, as_json: bool = False,
              from_vault: bool = False):
    target = connect_vault(env) if from_vault else connect(env)
    return run_verify(target, sample_percent=sample_percent, console=console, as_json=as_json)
