"""The review of a change set, in one place: the table the operator reads, the stateful guard that
refuses to destroy data nobody named, the confirmation, and the discard of a change set (and of the
empty stack of a CREATE) that nobody will execute."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from backup_cfn.deploy import changeset, stack_events
from backup_cfn.deploy.changeset import Change, ChangeSet
from backup_cfn.errors import UserError

if TYPE_CHECKING:
    from backup_cfn.deploy.stack_deployer import Options, StackSpec

ACTION_STYLES = {"Add": "green", "Modify": "yellow", "Remove": "red", "Import": "cyan", "Dynamic": "magenta"}


def change_set_table(change_set: ChangeSet, guarded: set[str] = frozenset()) -> Table:
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
        table.add_row(Text(change.action, style=style), Text(change.logical_id, style=style), change.resource_type,
                      _replacement(change), change.policy_action, ", ".join(change.properties))
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


def show_parameter_changes(console: Console, stack: dict | None, spec: StackSpec) -> None:
    if not stack or stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        return
    deployed = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
    for key, value in sorted(spec.parameters.items()):
        if deployed.get(key) != value:
            console.print(f"parameter {key}: {deployed.get(key, '(none)')} -> {value}", soft_wrap=True)


# --- the stateful guard ---------------------------------------------------------------------------

def guard_violations(changes: tuple[Change, ...], allow_replace: frozenset[str]) -> list[Change]:
    """Changes that would destroy or orphan stateful data and that the operator has not named."""
    return [c for c in changes if c.destroys_data and c.logical_id not in allow_replace]


def _how(change: Change) -> str:
    if change.action == "Remove":
        return "removed"
    if change.replaces:
        return f"replacement {change.replacement}"
    return f"policy action {change.policy_action}"


def refusal(stack_name: str, violations: list[Change]) -> UserError:
    named = " ".join(f"--allow-replace {v.logical_id}" for v in violations)
    return UserError(
        f"refusing to replace or remove stateful resources in {stack_name}: "
        + ", ".join(f"{v.logical_id} ({v.resource_type}, {_how(v)})" for v in violations)
        + f"; the data would be lost or orphaned. If that is intended, rerun with {named}")


# --- the steps a deployer takes ---------------------------------------------------------------------

def discard(cloudformation, change_set_id: str, stack_name: str, remove_stack: bool) -> None:
    """Delete a change set nobody will execute, and (remove_stack) the empty stack that waited for it."""
    changeset.delete(cloudformation, change_set_id)
    if remove_stack:
        stack = stack_events.describe_stack(cloudformation, stack_name)
        if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            cloudformation.delete_stack(StackName=stack["StackId"])


def show_and_guard(console: Console, cloudformation, spec: StackSpec, change_set: ChangeSet, options: Options,
                   remove_stack: bool) -> None:
    """Show the change set; refuse (and delete it) when it would destroy unnamed stateful data."""
    violations = guard_violations(change_set.changes, options.allow_replace)
    console.print(change_set_table(change_set, {v.logical_id for v in violations}))
    console.print(f"{spec.name}: {summary_counts(change_set)}")
    if violations:
        discard(cloudformation, change_set.id, spec.name, remove_stack)
        raise refusal(spec.name, violations)


def confirm(cloudformation, spec: StackSpec, change_set: ChangeSet, options: Options, remove_stack: bool) -> None:
    """Ask, unless --yes; without a terminal refuse rather than hang. Declined: the change set goes."""
    if options.yes:
        return
    if not options.interactive:
        discard(cloudformation, change_set.id, spec.name, remove_stack)
        raise UserError("no terminal to confirm the change set on: rerun with --yes, or with --no-execute "
                        "to review it in the CloudFormation console (the change set was deleted)")
    try:
        accepted = options.confirm(f"Execute this change set on {spec.name} ({spec.region})?")
    except BaseException:  # Ctrl-C or end of input at the prompt: as good as declined
        discard(cloudformation, change_set.id, spec.name, remove_stack)
        raise
    if not accepted:
        discard(cloudformation, change_set.id, spec.name, remove_stack)
        raise UserError(f"declined: the change set for {spec.name} was deleted and nothing changed")
