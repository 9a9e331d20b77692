"""IAM changes as permissions: what each role, and each resource policy (bucket, key, queue,
topic), gains and loses, one readable line per grant ("WorkerFunctionRole gains s3:DeleteObject
on ${BackupBucket.Arn}/content/*").

Statements are normalised before they are compared: a single value or a list, the case of an
action, the order of statements, actions, resources and principals, and how a policy is split
into statements or named policies do not count as changes; only what is allowed or denied, to
whom, on what and when does. Documents come from the resolved templates (resolve.py), so the
same unresolved reference on both sides compares equal.
"""
from __future__ import annotations

import json
from collections import defaultdict

from backup_cfn.deploy.changeset import Change
from backup_cfn.deploy.review.model import PermissionChange
from backup_cfn.deploy.review.text import compact

# Where each type keeps its policies.
POLICY_PROPERTIES = {
    "AWS::IAM::Role": ("Policies", "AssumeRolePolicyDocument", "ManagedPolicyArns"),
    "AWS::IAM::Policy": ("PolicyDocument", "Roles"),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument", "Roles"),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
}
ATTACH = "Attach"   # a managed policy attached to a role, as a grant of its own

Grant = tuple  # (effect, principal, action, resource, condition)


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _principals(statement: dict) -> list[str]:
    """'' for an identity policy (the role itself); else each principal as 'AWS arn', 'Service x'."""
    for field, prefix in (("Principal", ""), ("NotPrincipal", "everyone but ")):
        if field not in statement:
            continue
        value = statement[field]
        if value == "*":
            return [f"{prefix}anyone"]
        if isinstance(value, dict):
            return [f"{prefix}{kind} {compact(v)}" for kind, values in sorted(value.items()) for v in _as_list(values)]
        return [f"{prefix}{compact(value)}"]
    return [""]


def _condition(block) -> str:
    """A Condition block as one canonical line: Operator(key, value) joined by 'and', in a fixed
    order, a one-element list the same as its element."""
    if not isinstance(block, dict) or not block:
        return ""
    parts = []
    for operator, tests in sorted(block.items()):
        for key, value in sorted((tests or {}).items()) if isinstance(tests, dict) else [("", tests)]:
            values = sorted(compact(v) for v in _as_list(value))
            shown = values[0] if len(values) == 1 else "[" + ", ".join(values) + "]"
            parts.append(f"{operator}({key}, {shown})")
    return " and ".join(parts)


def grants(statements, default_resource: str = "") -> set[Grant]:
    """Every (effect, principal, action, resource, condition) the statements hold."""
    found: set[Grant] = set()
    for statement in _as_list(statements):
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect", "")
        actions = [a.lower() if isinstance(a, str) else compact(a) for a in _as_list(statement.get("Action"))]
        actions += [f"not {a.lower()}" for a in _as_list(statement.get("NotAction")) if isinstance(a, str)]
        resources = [compact(r) for r in _as_list(statement.get("Resource"))]
        resources += [f"not {compact(r)}" for r in _as_list(statement.get("NotResource"))]
        condition = _condition(statement.get("Condition"))
        for principal in _principals(statement):
            for action in actions:
                for resource in resources or [default_resource]:
                    found.add((effect, principal, action, resource, condition))
    return found


def _name(value) -> str:
    """A role, bucket, queue or topic a policy attaches to: its logical ID when it is a Ref."""
    return value["Ref"] if isinstance(value, dict) and isinstance(value.get("Ref"), str) else compact(value)


def _subject_grants(resource_type: str, logical_id: str, properties: dict) -> dict[str, set[Grant]]:
    """Per subject ('WorkerFunctionRole', 'BackupKey key policy'), the grants it holds."""
    if resource_type == "AWS::IAM::Role":
        identity = set()
        for policy in _as_list(properties.get("Policies")):
            if isinstance(policy, dict):
                identity |= grants(_statements(policy.get("PolicyDocument")))
        identity |= {(ATTACH, "", "managed policy", compact(arn), "") for arn in _as_list(properties.get("ManagedPolicyArns"))}
        return {logical_id: identity,
                f"{logical_id} trust policy": grants(_statements(properties.get("AssumeRolePolicyDocument")))}
    if resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        roles = ", ".join(_name(r) for r in _as_list(properties.get("Roles")))
        subject = f"{roles} (through {logical_id})" if roles else logical_id
        return {subject: grants(_statements(properties.get("PolicyDocument")))}
    if resource_type == "AWS::KMS::Key":
        return {f"{logical_id} key policy": grants(_statements(properties.get("KeyPolicy")), default_resource="*")}
    kind, target = {"AWS::S3::BucketPolicy": ("bucket policy", "Bucket"), "AWS::SQS::QueuePolicy": ("queue policy", "Queues"),
                    "AWS::SNS::TopicPolicy": ("topic policy", "Topics")}[resource_type]
    owners = ", ".join(_name(t) for t in _as_list(properties.get(target))) or logical_id
    return {f"{owners} {kind}": grants(_statements(properties.get("PolicyDocument")))}


def _statements(document) -> list:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    return _as_list(document.get("Statement")) if isinstance(document, dict) else []


def _spellings(value, found: dict[str, str]) -> dict[str, str]:
    """How the templates spell each action (compared in lower case, shown as written)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("Action", "NotAction"):
                for action in _as_list(item):
                    if isinstance(action, str):
                        found[action.lower()] = action
            else:
                _spellings(item, found)
    elif isinstance(value, list):
        for item in value:
            _spellings(item, found)
    return found


def permission_changes(change: Change, old: dict | None, new: dict | None) -> tuple[PermissionChange, ...]:
    """What the change does to permissions: lines gained and lost, from the resolved resources."""
    if change.resource_type not in POLICY_PROPERTIES:
        return ()
    before = _subject_grants(change.resource_type, change.logical_id, old["Properties"]) if old else {}
    after = _subject_grants(change.resource_type, change.logical_id, new["Properties"]) if new else {}
    spelling = _spellings(new["Properties"] if new else {}, _spellings(old["Properties"] if old else {}, {}))
    lines: list[PermissionChange] = []
    for subject in list(after) + [s for s in before if s not in after]:
        had, has = before.get(subject, set()), after.get(subject, set())
        lines += _lines(subject, "gains", has - had, spelling) + _lines(subject, "loses", had - has, spelling)
    return tuple(lines)


def _lines(subject: str, verb: str, held: set[Grant], spelling: dict[str, str]) -> list[PermissionChange]:
    """Grants grouped back into readable lines: one per (effect, principal, condition, resources)."""
    by_who: dict[tuple, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for effect, principal, action, resource, condition in held:
        shown = f"not {spelling.get(action[4:], action[4:])}" if action.startswith("not ") else spelling.get(action, action)
        by_who[(effect, principal, condition)][shown].add(resource)
    lines = []
    for (effect, principal, condition), actions in sorted(by_who.items()):
        by_resources: dict[frozenset, list[str]] = defaultdict(list)
        for action, resources in actions.items():
            by_resources[frozenset(resources)].append(action)
        for resources, grouped in sorted(by_resources.items(), key=lambda item: sorted(item[1])):
            lines.append(PermissionChange(subject, verb, effect, principal, tuple(sorted(grouped)),
                                          tuple(sorted(r for r in resources if r)), condition))
    return lines


def statement_counts(changes: tuple[PermissionChange, ...]) -> str:
    gained = sum(1 for c in changes if c.verb == "gains")
    lost = len(changes) - gained
    return f"{gained} permission line(s) gained, {lost} lost"
