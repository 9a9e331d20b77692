"""The review as the operator reads it: changed parameters, the change set table, each modified
resource's values (before → after, long ones folded, computed ones marked), the permissions
gained and lost, and the forecast."""
from __future__ import annotations

import re

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from backup_cfn.deploy.changeset import Change, ChangeSet
from backup_cfn.deploy.review.model import BLOCKING, NOTE, SOURCE_COMPUTED, ResourceReview, StackReview
from backup_cfn.deploy.review.permissions import POLICY_PROPERTIES, statement_counts
from backup_cfn.deploy.review.text import compact, fold

ACTION_STYLES = {"Add": "green", "Modify": "yellow", "Remove": "red", "Import": "cyan", "Dynamic": "magenta"}
SEVERITY_STYLES = {BLOCKING: "bold red", "warning": "yellow", NOTE: "dim"}
_NAMED_ELEMENT = re.compile(r"\[(\w+)=([^\]]*)\]$")
RECREATION_NOTES = {"Always": " (replaces the resource)", "Conditionally": " (may replace the resource)"}


def change_set_table(change_set: ChangeSet, guarded: set[str] = frozenset(),
                     reviews: dict[str, ResourceReview] | None = None) -> Table:
    """Action, logical ID, type, replacement, policy action and changed properties, one row per
    resource; resources touched only by stack tags are folded into one line at the end."""
    table = Table(title=f"{change_set.stack_name} ({change_set.region}): {change_set.change_set_type} change set "
                        f"{change_set.name}", title_justify="left", header_style="bold")
    table.add_column("Action", no_wrap=True)
    table.add_column("Logical ID", no_wrap=True)
    for column in ("Type", "Replacement", "PolicyAction", "Changed properties"):
        table.add_column(column, overflow="fold")
    tag_only = [c for c in change_set.changes if c.tags_only]
    for change in change_set.changes:
        if change.tags_only:
            continue
        style = "bold red" if change.logical_id in guarded else ACTION_STYLES.get(change.action, "")
        names = change.properties or tuple((reviews or {}).get(change.logical_id, ResourceReview(change)).property_names)
        table.add_row(Text(change.action, style=style), Text(change.logical_id, style=style), change.resource_type,
                      _replacement(change), change.policy_action, ", ".join(names))
    if tag_only:
        table.add_row(Text("Modify", style="yellow"), f"{len(tag_only)} resources", "", "", "",
                      "Tags (stack tags only)")
    return table


def _replacement(change: Change) -> Text:
    if change.replacement == "True":
        return Text("True", style="bold red")
    if change.replacement == "Conditional":
        return Text("Conditional", style="red")
    return Text(change.replacement)


def summary_counts(change_set: ChangeSet) -> str:
    counts: dict[str, int] = {}
    for change in change_set.changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    return ", ".join(f"{n} {action.lower()}" for action, n in sorted(counts.items())) or "no resource changes"


def _shown(path: str, value) -> str:
    """A value, folded; a list element named in the path by its key shown without that key."""
    named = _NAMED_ELEMENT.search(path)
    if named and isinstance(value, dict) and value.get(named.group(1)) == named.group(2):
        value = {k: v for k, v in value.items() if k != named.group(1)}
    return fold(compact(value))


def value_lines(resource: ResourceReview) -> list[str]:
    """`path: before → after`, folded; a policy property as a count (its permissions follow)."""
    lines, summarised = [], set()
    policies = POLICY_PROPERTIES.get(resource.change.resource_type, ())
    for value in resource.values:
        top = value.path.split(".")[0].split("[")[0]
        if top in policies and resource.permissions:
            if top not in summarised:
                summarised.add(top)
                lines.append(f"{top}: {statement_counts(resource.permissions)} (see permissions)")
            continue
        line = f"{value.path}: {_shown(value.path, value.before)} → {_shown(value.path, value.after)}"
        if value.causes:
            line += f" (from {', '.join(value.causes)})"
        line += RECREATION_NOTES.get(value.recreation, "")
        if value.source == SOURCE_COMPUTED:
            line += " [computed]"
        lines.append(line)
    return lines


def show(console: Console, review: StackReview) -> None:
    for key, before, after in review.parameters:
        console.print(f"parameter {key}: {before if before is not None else '(none)'} → {after}",
                      soft_wrap=True, markup=False, highlight=False)
    reviews = {r.change.logical_id: r for r in review.resources}
    console.print(change_set_table(review.change_set, {c.logical_id for c in review.guard_violations}, reviews))
    computed = False
    for resource in review.resources:
        lines = value_lines(resource) if not resource.change.tags_only else []
        if not lines:
            continue
        change = resource.change
        replacement = f", replacement {change.replacement}" if change.replacement else ""
        console.print(Text(f"{change.logical_id} ({change.resource_type}) {change.action.lower()}{replacement}:",
                           style="bold"))
        for line in lines:
            console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
        computed = computed or any(v.source == SOURCE_COMPUTED for v in resource.values)
    if computed:
        console.print(Text("[computed]: CloudFormation gave no value; computed from the deployed template and "
                           "parameters against the new ones", style="dim"), soft_wrap=True)
    permissions = [p for r in review.resources for p in r.permissions]
    if permissions:
        console.print(Text("permissions:", style="bold"))
        for permission in permissions:
            style = "green" if permission.verb == "gains" else "red"
            console.print(Text(f"  {permission.text}", style=style), soft_wrap=True)
    show_findings(console, review)
    console.print(f"{review.stack_name}: {summary_counts(review.change_set)}", highlight=False)


def show_findings(console: Console, review: StackReview) -> None:
    if not review.findings:
        console.print("[bold]forecast:[/bold] nothing found that would fail, lose data or need action")
        return
    console.print(Text("forecast:", style="bold"))
    for finding in review.findings:
        label = "accepted" if finding.accepted else finding.severity
        style = "green" if finding.accepted else SEVERITY_STYLES.get(finding.severity, "")
        console.print(f"  [{style}]{label}[/{style}] {escape(finding.id)}: {escape(finding.message)}", soft_wrap=True,
                      highlight=False)
