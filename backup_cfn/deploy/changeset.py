"""Change sets: create one, wait for it, read it as rows, judge it (empty? destroys data?), delete it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import quote

from backup_cfn.deploy.stack_events import Poll

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# How CloudFormation words a change set with nothing in it (the second for some update paths).
EMPTY_REASONS = ("didn't contain changes", "No updates are to be performed")
# Resources whose replacement or removal loses data (or, for a key, makes data unreadable).
STATEFUL_TYPES = frozenset({"AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable",
                            "AWS::KMS::Key", "AWS::Logs::LogGroup"})
DATA_DELETING_POLICY_ACTIONS = frozenset({"Delete", "ReplaceAndDelete"})


@dataclass(frozen=True)
class Change:
    action: str                 # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str            # True | False | Conditional | "" (not applicable)
    policy_action: str          # Delete | Retain | Snapshot | ReplaceAndDelete | ... | ""
    properties: tuple[str, ...]
    scope: tuple[str, ...]
    # With IncludePropertyValues: each detail's Target carries Path, BeforeValue and AfterValue,
    # and the contexts (encoded JSON) the resource's properties before and after.
    details: tuple[dict, ...] = ()
    before_context: str | None = None
    after_context: str | None = None
    physical_id: str = ""

    @classmethod
    def from_api(cls, change: dict) -> Change:
        resource = change.get("ResourceChange", {})
        properties = []
        for detail in resource.get("Details", []):
            target = detail.get("Target", {})
            name = target.get("Name") or target.get("Attribute", "")
            if name and detail.get("CausingEntity"):
                name = f"{name} (from {detail['CausingEntity']})"
            if name and name not in properties:
                properties.append(name)
        return cls(action=resource.get("Action", ""), logical_id=resource.get("LogicalResourceId", ""),
                   resource_type=resource.get("ResourceType", ""), replacement=resource.get("Replacement", ""),
                   policy_action=resource.get("PolicyAction", ""), properties=tuple(properties),
                   scope=tuple(resource.get("Scope", [])), details=tuple(resource.get("Details", [])),
                   before_context=resource.get("BeforeContext"), after_context=resource.get("AfterContext"),
                   physical_id=resource.get("PhysicalResourceId", ""))

    @property
    def replaces(self) -> bool:
        return self.replacement in ("True", "Conditional")

    @property
    def tags_only(self) -> bool:
        """A stack-tag update that CloudFormation propagates to the resource, and nothing else."""
        return self.action == "Modify" and self.scope == ("Tags",) and not self.replaces

    @property
    def destroys_data(self) -> bool:
        if self.resource_type not in STATEFUL_TYPES:
            return False
        return self.action == "Remove" or self.replaces or self.policy_action in DATA_DELETING_POLICY_ACTIONS


@dataclass(frozen=True)
class ChangeSet:
    id: str
    name: str
    stack_id: str
    stack_name: str
    change_set_type: str
    region: str
    status: str
    reason: str
    changes: tuple[Change, ...]

    @property
    def empty(self) -> bool:
        return self.status == "FAILED" and any(text in self.reason for text in EMPTY_REASONS)

    @property
    def console_url(self) -> str:
        return (f"https://{self.region}.console.aws.amazon.com/cloudformation/home?region={self.region}"
                f"#/stacks/changesets/changes?stackId={quote(self.stack_id, safe='')}"
                f"&changeSetId={quote(self.id, safe='')}")


@dataclass(frozen=True)
class TemplateSource:
    """The template as CloudFormation receives it: inline, or a URL in the artifacts bucket."""

    body: str | None = None
    url: str | None = None

    def api_arguments(self) -> dict:
        return {"TemplateURL": self.url} if self.url else {"TemplateBody": self.body}


def change_set_name(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"backup-cfn-{now:%Y%m%d-%H%M%S}"


def create(cloudformation, *, stack_name: str, change_set_type: str, template: TemplateSource,
           parameters: dict[str, str], tags: dict[str, str], description: str) -> tuple[str, str]:
    """Create the change set; returns (change set ID, stack ID)."""
    response = cloudformation.create_change_set(
        StackName=stack_name, ChangeSetName=change_set_name(), ChangeSetType=change_set_type,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        Capabilities=CAPABILITIES, Description=description[:1024], **template.api_arguments())
    return response["Id"], response["StackId"]


def wait(cloudformation, change_set_id: str, *, change_set_type: str, region: str, poll: Poll) -> ChangeSet:
    """Poll until CloudFormation has computed the change set (or failed to); every page of changes,
    with the property values before and after (IncludePropertyValues)."""
    while True:
        response = cloudformation.describe_change_set(ChangeSetName=change_set_id, IncludePropertyValues=True)
        if response["Status"] in ("CREATE_COMPLETE", "FAILED"):
            break
        poll.wait()
    changes = list(response.get("Changes", []))
    token = response.get("NextToken")
    while token:
        page = cloudformation.describe_change_set(ChangeSetName=change_set_id, IncludePropertyValues=True,
                                                  NextToken=token)
        changes += page.get("Changes", [])
        token = page.get("NextToken")
    return ChangeSet(id=response["ChangeSetId"], name=response["ChangeSetName"], stack_id=response["StackId"],
                     stack_name=response["StackName"],
                     change_set_type=change_set_type,
                     region=region, status=response["Status"], reason=response.get("StatusReason", ""),
                     changes=tuple(Change.from_api(c) for c in changes if c.get("Type") == "Resource"))


def delete(cloudformation, change_set_id: str) -> None:
    cloudformation.delete_change_set(ChangeSetName=change_set_id)


def delete_stale(cloudformation, stack_id: str) -> list[str]:
    """Delete this tool's earlier change sets on the stack that nobody executed (left for console
    review with --no-execute, or failed); returns their names."""
    stale = []
    token = None
    while True:
        page = cloudformation.list_change_sets(StackName=stack_id, **({"NextToken": token} if token else {}))
        for summary in page.get("Summaries", []):
            if summary["ChangeSetName"].startswith("backup-cfn-") and \
                    summary.get("ExecutionStatus") in ("AVAILABLE", "UNAVAILABLE", "OBSOLETE", "EXECUTE_FAILED"):
                cloudformation.delete_change_set(ChangeSetName=summary["ChangeSetId"])
                stale.append(summary["ChangeSetName"])
        token = page.get("NextToken")
        if not token:
            return stale
