"""The changed values of a modified resource, each as a path with its value before and after.

CloudFormation's own values come first (DescribeChangeSet with IncludePropertyValues: each
detail's Path, BeforeValue and AfterValue, and the resource's BeforeContext and AfterContext).
Where it gives none (the emulator, an older change set), or only a truncated signature or
"known after apply", the values are computed: the deployed template with its parameters against
the new template with the new ones (`resolve.Resolver`), and marked as computed. Which
properties change, what causes each change and whether it recreates the resource stay
CloudFormation's word whenever it gives one.
"""
from __future__ import annotations

import json

from backup_cfn.deploy.changeset import Change
from backup_cfn.deploy.review.model import ABSENT, SOURCE_AWS, SOURCE_COMPUTED, UNKNOWN, ValueChange
from backup_cfn.deploy.review.text import map_leaves

# Keys that name a list element better than its position, in order of preference.
NATURAL_KEYS = ("Id", "Sid", "Key", "PolicyName", "IndexName", "AttributeName", "Name")
KNOWN_AFTER_APPLY = "{{changeSet:KNOWN_AFTER_APPLY}}"
TRUNCATED = "(Truncated-Signature):"
CAUSE_SOURCES = ("ParameterReference", "ResourceReference", "ResourceAttribute")
RECREATION_ORDER = ("", "Never", "Conditionally", "Always")


# --- the deep diff ---------------------------------------------------------------------------------

def is_intrinsic(value) -> bool:
    """{Ref: X}, {Fn::GetAtt: ...}: one value, not a structure to descend into."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key == "Ref" or key.startswith("Fn::")


def natural_key(*lists: list) -> str | None:
    """The first natural key every element of every list has, unique within each list."""
    for key in NATURAL_KEYS:
        if all(_keyed_by(items, key) for items in lists):
            return key
    return None


def _keyed_by(items: list, key: str) -> bool:
    ids = [item.get(key) for item in items if isinstance(item, dict) and not is_intrinsic(item)]
    return len(ids) == len(items) and all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def diff(before, after, path: str = "") -> list[tuple[str, object, object]]:
    """(path, before, after) for every differing value; a subtree only on one side is one entry."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict) and not is_intrinsic(before) and not is_intrinsic(after):
        keys = list(before) + [k for k in after if k not in before]
        return [entry for key in keys
                for entry in diff(before.get(key, ABSENT), after.get(key, ABSENT), _child(path, key))]
    if isinstance(before, list) and isinstance(after, list):
        if any(isinstance(i, dict) for i in before + after):
            key = natural_key(before, after)
            if key is not None:
                old, new = {i[key]: i for i in before}, {i[key]: i for i in after}
                ids = list(old) + [i for i in new if i not in old]
                return [entry for i in ids
                        for entry in diff(old.get(i, ABSENT), new.get(i, ABSENT), f"{path}[{key}={i}]")]
            return [entry for n in range(max(len(before), len(after)))
                    for entry in diff(before[n] if n < len(before) else ABSENT,
                                      after[n] if n < len(after) else ABSENT, f"{path}[{n}]")]
    return [(path, before, after)]


def top_name(path: str) -> str:
    return path.split(".")[0].split("[")[0]


# --- CloudFormation's values -------------------------------------------------------------------------

def parse_context(raw) -> dict | None:
    """A Before/AfterContext (an encoded JSON string) as its Properties; None when absent or unreadable."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, dict):
        return None
    properties = raw.get("Properties", {})
    return properties if isinstance(properties, dict) else None


def _truncated(value) -> bool:
    return TRUNCATED in json.dumps(value) if not isinstance(value, str) else value.startswith(TRUNCATED)


def _aws_value(raw):
    """A detail's Before/AfterValue: JSON objects and lists are given encoded."""
    if raw is None:
        return ABSENT
    if raw == KNOWN_AFTER_APPLY:
        return UNKNOWN
    if isinstance(raw, str) and raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _unknown_placeholders(value):
    return map_leaves(value, lambda v: UNKNOWN if v == KNOWN_AFTER_APPLY else v)


def _detail_name(target: dict) -> str:
    if target.get("Name"):
        return target["Name"]
    path = target.get("Path", "")
    segments = [s for s in path.split("/") if s]
    if len(segments) > 1 and segments[0] == "Properties":
        return segments[1]
    return target.get("Attribute", "")


def _natural_path(segments: list[str], context: dict | None) -> str:
    """An AWS detail path (/Properties/Rules/0/Days) with list positions named by natural key."""
    path, node = "", context
    for segment in segments:
        if isinstance(node, list) and segment.isdigit():
            index = int(segment)
            key = natural_key(node)
            item = node[index] if index < len(node) else None
            path += f"[{key}={item[key]}]" if key and isinstance(item, dict) else f"[{index}]"
            node = item
        else:
            path = _child(path, segment)
            node = node.get(segment) if isinstance(node, dict) else None
    return path


class _Named:
    """What CloudFormation says about one top-level property: causes, recreation, detail values."""

    def __init__(self):
        self.causes: list[str] = []
        self.recreation = ""
        self.values: list[tuple[str, object, object]] = []
        self.truncated = False


def _named_details(change: Change, before: dict | None, after: dict | None) -> dict[str, _Named]:
    named: dict[str, _Named] = {}
    for detail in change.details:
        target = detail.get("Target", {})
        if target.get("Attribute") not in ("Properties", "Tags"):
            continue
        entry = named.setdefault(_detail_name(target), _Named())
        if detail.get("ChangeSource") in CAUSE_SOURCES and detail.get("CausingEntity") \
                and detail["CausingEntity"] not in entry.causes:
            entry.causes.append(detail["CausingEntity"])
        recreation = target.get("RequiresRecreation", "")
        if RECREATION_ORDER.index(recreation if recreation in RECREATION_ORDER else "") > \
                RECREATION_ORDER.index(entry.recreation):
            entry.recreation = recreation
        if "BeforeValue" not in target and "AfterValue" not in target:
            continue
        if _truncated(target.get("BeforeValue", "")) or _truncated(target.get("AfterValue", "")):
            entry.truncated = True
            continue
        segments = [s for s in target.get("Path", "").split("/") if s][1:]
        change_type = target.get("AttributeChangeType")
        old = ABSENT if change_type == "Add" else _aws_value(target.get("BeforeValue"))
        new = ABSENT if change_type == "Remove" else _aws_value(target.get("AfterValue"))
        path = _natural_path(segments, after if change_type == "Add" else before) if segments else _detail_name(target)
        if (path, old, new) not in entry.values:
            entry.values.append((path, old, new))
    return named


# --- both, per property ------------------------------------------------------------------------------

def resource_values(change: Change, old: dict | None, new: dict | None,
                    parameter_changes: dict[str, tuple]) -> tuple[ValueChange, ...]:
    """The changed values of a Modify: CloudFormation's where it gives them, computed otherwise.
    `old`/`new` are the resolved resources (resolve.Resolver.resources) of both templates."""
    if change.action != "Modify":
        return ()
    computed: dict[str, list] = {}
    if old is not None and new is not None:
        for path, before, after in diff(old["Properties"], new["Properties"]):
            computed.setdefault(top_name(path), []).append((path, before, after))
    before_context, after_context = parse_context(change.before_context), parse_context(change.after_context)
    # Without contexts, the templates still name a list position (Rules/0 -> Rules[Id=...]).
    named = _named_details(change, before_context if before_context is not None else (old or {}).get("Properties"),
                           after_context if after_context is not None else (new or {}).get("Properties"))
    # CloudFormation's list of changed properties is authoritative; without details (the
    # emulator, a tag-only change) the computed one is all there is.
    names = list(named) if named else list(computed)
    values: list[ValueChange] = []
    for name in names:
        told = named.get(name, _Named())
        causes = tuple(told.causes) or _computed_causes(name, old, new, parameter_changes)
        lines, source = _aws_lines(name, told, before_context, after_context), SOURCE_AWS
        if not lines and name in computed:
            lines, source = computed[name], SOURCE_COMPUTED
        if not lines:
            lines, source = [(name, UNKNOWN, UNKNOWN)], SOURCE_AWS
        values += [ValueChange(path, before, after, source, causes, told.recreation) for path, before, after in lines]
    return tuple(values)


def _aws_lines(name: str, told: _Named, before: dict | None, after: dict | None) -> list:
    if before is not None and after is not None:
        old, new = before.get(name, ABSENT), after.get(name, ABSENT)
        if not _truncated(old) and not _truncated(new):
            lines = diff(_unknown_placeholders(old), _unknown_placeholders(new), name)
            if lines:
                return lines
    return [] if told.truncated else told.values


def referenced_parameters(value) -> set[str]:
    """Names a raw template value refers to (Ref, or ${Name} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    found |= {part.split("}")[0] for part in text.split("${")[1:]}
                found |= referenced_parameters(item[1] if isinstance(item, list) and len(item) > 1 else None)
            else:
                found |= referenced_parameters(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_parameters(item)
    return found


def _computed_causes(name: str, old: dict | None, new: dict | None, parameter_changes: dict) -> tuple[str, ...]:
    used = set()
    for resource in (old, new):
        if resource is not None:
            used |= referenced_parameters(resource["Raw"].get(name))
    return tuple(sorted(used & set(parameter_changes)))
