"""`backup-cfn cost`: the estimate as tables, three scenarios side by side, then this design's quantities."""
from __future__ import annotations

import dataclasses

from rich.console import Console
from rich.table import Table

from backup_cfn.config import Environment
from backup_cfn.ops.cost.model import GLACIER, IA, STANDARD, Estimate, Workload, estimate
from backup_cfn.output import print_json


def _money(value: float) -> str:
    return f"${value:,.2f}"


_GROUPS = ("S3 primary", "S3 replica", "S3 vault", "AWS Backup", "S3 requests", "S3 lifecycle", "Replication", "KMS", "  KMS")


def _component_group(component: str) -> tuple[int, int]:
    """Rows of all scenarios in one order: storage by bucket and class, then requests, then the rest."""
    group = next((i for i, prefix in enumerate(_GROUPS) if component.startswith(prefix)), len(_GROUPS))
    if group == _GROUPS.index("  KMS"):
        group = _GROUPS.index("KMS")
    klass = next((i for i, name in enumerate((STANDARD, IA, GLACIER, "early")) if name in component), 0)
    return group, klass


def render(result: Estimate, console: Console) -> None:
    w, f, env = result.workload, result.facts, result.env
    console.print(
        f"[bold]{env.name}[/bold] ({env.region} -> {env.replica_region}): {w.data_gb:,.0f} GB in {w.objects:,} objects over {w.users:,} users, {w.daily_change:.2%} changed per day, "
        f"{w.duplicate_share:.0%} cross-user duplicates, retention {f.retention_days} days"
        + (f" + {len(f.long_term_ages())} older snapshots per user (keep weekly {f.keep_weekly}, monthly "
           f"{f.keep_monthly}, yearly {f.keep_yearly})" if f.long_term_ages() else ""))
    transition = f"IA at day {f.transition_day} (objects > 128 KiB)" if f.transition_day else "no IA transition"
    dr = (f"the vault: a compliance lock as long as the rules keep each snapshot, {f.vault_slack_days:g} days' slack"
          if f.vault else f"replica {f.retention_days}")
    console.print(f"lifecycle: {transition}; deleted versions kept {f.deleted_version_days} days ({dr}); object lock "
                  f"{f.object_lock} (adds no storage: every version outlives its lock); RTC {'on' if f.rtc else 'off'}; interface endpoint-AZs {f.interface_endpoint_azs}; "
                  f"trail {'multi-region' if f.multi_region_trail else 'one region'}")
    table = Table(title="Monthly cost, steady state (USD)", title_justify="left")
    table.add_column("component")
    for scenario in result.scenarios:
        table.add_column(scenario.name, justify="right")
    components: list[str] = []
    for scenario in result.scenarios:
        for item in scenario.items:
            if item.component not in components:
                components.append(item.component)
    for component in sorted(components, key=lambda c: (_component_group(c), components.index(c))):
        cells = []
        for scenario in result.scenarios:
            present = [i for i in scenario.items if i.component == component]
            if not present:
                cells.append("-")
            else:
                text = _money(scenario.usd(component))
                cells.append(f"({text})" if not present[0].in_total else text)
        table.add_row(component, *cells)
    table.add_section()
    table.add_row("[bold]total per month[/bold]", *[f"[bold]{_money(s.total)}[/bold]" for s in result.scenarios])
    console.print(table)

    details = Table(title=f"{result.scenarios[0].name}: quantities", title_justify="left")
    details.add_column("component")
    details.add_column("quantity", justify="right")
    details.add_column("USD/month", justify="right")
    for item in result.scenarios[0].items:
        details.add_row(item.component, item.quantity, _money(item.usd) if item.in_total else f"({_money(item.usd)})")
    console.print(details)
    for scenario in result.scenarios:
        for note in scenario.notes:
            console.print(f"note: {note}")
    console.print(f"note: {NOT_COUNTED}")
    console.print(f"prices: {result.prices.label}; edit the file to update them")


NOT_COUNTED = ("(parenthesised) figures are not in the total; not counted: free tiers, taxes, log storage "
               "(CloudTrail, access logs, CloudWatch Logs), restores, the first full backup")


def estimate_json(result: Estimate) -> dict:
    """The `cost --json` document (docs/json.md, backup-cfn/cost)."""
    return {
        "env": result.env.name, "region": result.env.region, "replica_region": result.env.replica_region,
        "workload": dataclasses.asdict(result.workload), "facts": dataclasses.asdict(result.facts),
        "scenarios": [{"name": s.name, "total_usd": round(s.total, 2),
                       "items": [{"component": i.component, "quantity": i.quantity, "usd": round(i.usd, 4),
                                  "in_total": i.in_total} for i in s.items],
                       "notes": list(s.notes)} for s in result.scenarios],
        "notes": [NOT_COUNTED], "prices": result.prices.label,
    }


def print_estimate(env: Environment, *, data_gb: float, objects: int, users: int, daily_change_percent: float,
                   duplicates_percent: float = 0.0, console: Console | None = None, as_json: bool = False) -> Estimate:
    """The `backup-cfn cost` command: validate the workload, estimate, print the tables (or the document)."""
    import sys

    workload = Workload(data_gb=data_gb, objects=objects, users=users, daily_change=daily_change_percent / 100,
                        duplicate_share=duplicates_percent / 100)
    result = estimate(env, workload)
    if as_json:
        print_json("cost", estimate_json(result))
        return result
    console = console or Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    render(result, console)
    return result
