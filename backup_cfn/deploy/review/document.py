"""The review as one JSON document, for CI (`diff --json`, `deploy --json`), and the exit codes
that tell a pipeline what happened without reading it. The schema is versioned: a field is only
ever added within a version; docs/review.md describes it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from backup_cfn.deploy.review.model import ABSENT, UNKNOWN, ResourceReview, StackReview
from backup_cfn.deploy.review.text import jsonable

if TYPE_CHECKING:
    from backup_cfn.deploy.stack_spec import StackResult

SCHEMA_VERSION = 1
EXIT_NO_CHANGES = 0   # also: deploy executed (or had nothing to do)
EXIT_ERROR = 1
EXIT_CHANGES = 2      # diff (or deploy --no-execute) found changes, none refused
EXIT_BLOCKED = 3      # the stateful guard or a blocking forecast finding refused a change set


def exit_code(results: dict[str, StackResult], *, executed_is_success: bool = False) -> int:
    outcomes = {r.outcome for r in results.values()}
    if "blocked" in outcomes:
        return EXIT_BLOCKED
    if "planned" in outcomes and not executed_is_success:
        return EXIT_CHANGES
    return EXIT_NO_CHANGES


def _value(document: dict, side: str, value) -> None:
    if value is ABSENT:
        document[f"{side}_absent"] = True
    elif value is UNKNOWN:
        document[f"{side}_unknown"] = True
    else:
        document[side] = jsonable(value)


def _resource(resource: ResourceReview) -> dict:
    change = resource.change
    values = []
    for value in resource.values:
        entry = {"path": value.path, "source": value.source, "caused_by": list(value.causes),
                 "requires_recreation": value.recreation}
        _value(entry, "before", value.before)
        _value(entry, "after", value.after)
        values.append(entry)
    return {"action": change.action, "logical_id": change.logical_id, "type": change.resource_type,
            "physical_id": change.physical_id, "replacement": change.replacement,
            "policy_action": change.policy_action, "scope": list(change.scope), "tags_only": change.tags_only,
            "properties": values,
            "permissions": [{"subject": p.subject, "verb": p.verb, "effect": p.effect, "principal": p.principal,
                             "actions": list(p.actions), "resources": list(p.resources), "condition": p.condition,
                             "text": p.text} for p in resource.permissions]}


def _stack(label: str, result: StackResult) -> dict:
    review: StackReview | None = result.review
    entry = {"label": label, "outcome": result.outcome, "change_set": None, "parameters": [], "changes": [],
             "guard": [], "forecast": [], "blocked": result.outcome == "blocked"}
    if result.change_set is not None:
        entry["change_set"] = {"id": result.change_set.id, "name": result.change_set.name,
                               "type": result.change_set.change_set_type, "stack": result.change_set.stack_name,
                               "region": result.change_set.region}
    if review is not None:
        entry["parameters"] = [{"key": key, "before": before, "after": after} for key, before, after in review.parameters]
        entry["changes"] = [_resource(r) for r in review.resources]
        entry["guard"] = [{"logical_id": c.logical_id, "type": c.resource_type, "action": c.action,
                           "replacement": c.replacement, "policy_action": c.policy_action}
                          for c in review.guard_violations]
        entry["forecast"] = [{"id": f.id, "kind": f.kind, "logical_id": f.logical_id, "severity": f.severity,
                              "accepted": f.accepted, "blocks": f.blocks, "message": f.message, "data": f.data}
                             for f in review.findings]
    return entry


def document(command: str, environment: str, results: dict[str, StackResult], *, code: int,
             error: str | None = None) -> dict:
    outcome = {EXIT_NO_CHANGES: "no changes", EXIT_CHANGES: "changes", EXIT_BLOCKED: "blocked",
               EXIT_ERROR: "error"}[code]
    if command == "deploy" and code == EXIT_NO_CHANGES and any(r.outcome == "executed" for r in results.values()):
        outcome = "executed"
    return {"schema_version": SCHEMA_VERSION, "command": command, "environment": environment, "outcome": outcome,
            "exit_code": code, "error": error, "stacks": [_stack(label, r) for label, r in results.items()]}
