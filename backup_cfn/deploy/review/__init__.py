"""The review of a change set, in one place: what changes, value by value (values.py), which
permissions are gained and lost (permissions.py), what the forecast expects (forecast.py,
lookups.py), the stateful guard that refuses to destroy data nobody named, the confirmation, and
the discard of a change set (and of the empty stack of a CREATE) that nobody will execute. The
console shows it (render.py); `--json` writes it as one document (document.py)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

from backup_cfn.deploy import changeset, stack_events
from backup_cfn.deploy.changeset import Change, ChangeSet
from backup_cfn.deploy.review import forecast
from backup_cfn.deploy.review.forecast_input import ForecastInput
from backup_cfn.deploy.review.lookups import validation_failures
from backup_cfn.deploy.review.model import ResourceReview, StackReview
from backup_cfn.deploy.review.permissions import permission_changes
from backup_cfn.deploy.review.render import change_set_table, show, summary_counts
from backup_cfn.deploy.review.resolve import Resolver, pseudo_parameters
from backup_cfn.deploy.review.values import resource_values
from backup_cfn.errors import Refused, UserError

if TYPE_CHECKING:
    from backup_cfn.deploy.stack_spec import Options, StackSpec

__all__ = ["change_set_table", "confirm", "discard", "guard_violations", "prepare", "refusal", "show",
           "summary_counts", "validation_failures"]


# --- what changes ---------------------------------------------------------------------------------

def _deployed_template(cloudformation, stack_id: str) -> dict | None:
    body = cloudformation.get_template(StackName=stack_id, TemplateStage="Original")["TemplateBody"]
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError:   # not this tool's JSON (YAML from elsewhere): values are CloudFormation's only
        return None


def prepare(cloudformation, spec: StackSpec, change_set: ChangeSet, stack: dict | None, options: Options,
            readers: Callable[[str], object] | None = None) -> StackReview:
    """Read what the change set changes (values, permissions), forecast, and judge it."""
    pseudo = pseudo_parameters(change_set.stack_id, spec.name)
    updating = change_set.change_set_type == "UPDATE" and stack is not None
    deployed = {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])} if updating else {}
    new = Resolver(spec.document, spec.parameters, pseudo).resources()
    old = None
    if updating and any(c.action in ("Modify", "Remove") for c in change_set.changes):
        template = _deployed_template(cloudformation, change_set.stack_id)
        old = Resolver(template, deployed, pseudo).resources() if template is not None else None
    parameters = tuple((key, deployed.get(key), value) for key, value in sorted(spec.parameters.items())
                       if updating and deployed.get(key) != value)
    changed = {key: (before, after) for key, before, after in parameters}
    resources = tuple(ResourceReview(c, resource_values(c, (old or {}).get(c.logical_id), new.get(c.logical_id), changed),
                                     permission_changes(c, (old or {}).get(c.logical_id), new.get(c.logical_id)))
                      for c in change_set.changes)
    inputs = ForecastInput(
        stack_name=spec.name, change_set=change_set, old=old, new=new,
        account=pseudo["AWS::AccountId"], partition=pseudo["AWS::Partition"],
        outputs={o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])},
        cloudformation=cloudformation, readers=readers)
    return StackReview(spec.label, spec.name, spec.region, change_set, parameters, resources,
                       tuple(guard_violations(change_set.changes, options.allow_replace)),
                       forecast.run(inputs, options.accept))


# --- the stateful guard and the forecast's blocking findings -------------------------------------------

def guard_violations(changes: tuple[Change, ...], allow_replace: frozenset[str]) -> list[Change]:
    """Changes that would destroy or orphan stateful data and that the operator has not named."""
    return [c for c in changes if c.destroys_data and c.logical_id not in allow_replace]


def _how(change: Change) -> str:
    if change.action == "Remove":
        return "removed"
    if change.replaces:
        return f"replacement {change.replacement}"
    return f"policy action {change.policy_action}"


def refusal(review: StackReview) -> Refused:
    """One line: what is refused, and the flags that would let it through."""
    parts, flags = [], []
    if review.guard_violations:
        parts.append(f"refusing to replace or remove stateful resources in {review.stack_name}: "
                     + ", ".join(f"{v.logical_id} ({v.resource_type}, {_how(v)})" for v in review.guard_violations)
                     + "; the data would be lost or orphaned")
        flags += [f"--allow-replace {v.logical_id}" for v in review.guard_violations]
    if review.blocking:
        parts.append(f"refusing the change set for {review.stack_name}: the forecast blocks it with "
                     + ", ".join(f.id for f in review.blocking))
        flags += [f"--accept {f.id}" for f in review.blocking]
    return Refused("; ".join(parts) + f". If that is intended, rerun with {' '.join(flags)}", review)


# --- the steps a deployer takes ---------------------------------------------------------------------

def discard(cloudformation, change_set_id: str, stack_name: str, remove_stack: bool) -> None:
    """Delete a change set nobody will execute, and (remove_stack) the empty stack that waited for it."""
    changeset.delete(cloudformation, change_set_id)
    if remove_stack:
        stack = stack_events.describe_stack(cloudformation, stack_name)
        if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            cloudformation.delete_stack(StackName=stack["StackId"])


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
