"""What the forecast's checks read: the change set and the resources before and after it
(ForecastInput), and the helpers both kinds of check use (offline ones in forecast.py, the ones that
read the account in lookups.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from backup_cfn.deploy.changeset import ChangeSet


@dataclass
class ForecastInput:
    """What the checks see: the change set, the resolved resources before (None: no stack yet)
    and after, the deployed stack's outputs, and read-only clients for the stack's region."""

    stack_name: str
    change_set: ChangeSet
    old: dict[str, dict] | None
    new: dict[str, dict]
    account: str
    partition: str = "aws"
    outputs: dict[str, str] = field(default_factory=dict)
    cloudformation: object = None
    readers: Callable[[str], object] | None = None
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def old_properties(self, logical_id: str) -> dict:
        return ((self.old or {}).get(logical_id) or {}).get("Properties", {})

    def new_properties(self, logical_id: str) -> dict:
        return (self.new.get(logical_id) or {}).get("Properties", {})

    def changes_of(self, resource_type: str, actions=("Add", "Modify", "Remove")):
        return [c for c in self.change_set.changes if c.resource_type == resource_type and c.action in actions]


def property_at(properties: dict, *path):
    """The value at `path` inside a resource's properties; None where any step is missing."""
    node = properties
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


# The property that holds a resource's physical name, where it can set one.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName", "AWS::IAM::Role": "RoleName", "AWS::Lambda::Function": "FunctionName",
    "AWS::Logs::LogGroup": "LogGroupName", "AWS::KMS::Alias": "AliasName", "AWS::CloudTrail::Trail": "TrailName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}


def new_names(inp: ForecastInput) -> list[tuple[object, str, str]]:
    """(change, type, name) for each physical name the change set creates: a new resource's, or a
    renamed one's. Names that are references (not literal) are left out."""
    found = []
    for change in inp.change_set.changes:
        prop = NAME_PROPERTIES.get(change.resource_type)
        if not prop or change.action not in ("Add", "Modify"):
            continue
        name = inp.new_properties(change.logical_id).get(prop)
        old_name = inp.old_properties(change.logical_id).get(prop)
        if isinstance(name, str) and (change.action == "Add" or name != old_name):
            found.append((change, change.resource_type, name))
    return found
