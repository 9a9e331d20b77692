"""What a review finds, as plain values: property changes with their before and after values,
permissions gained and lost, forecast findings, and the verdict on one stack's change set. The
console and the JSON document are both rendered from these."""
from __future__ import annotations

from dataclasses import dataclass, field

from backup_cfn.deploy.changeset import Change, ChangeSet


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


# A side of a change where the property is not set at all (added or removed).
ABSENT = _Marker("ABSENT")
# A value CloudFormation only knows once it deploys (its {{changeSet:KNOWN_AFTER_APPLY}}), or one
# it names as changing without giving it (older change sets, values it truncated).
UNKNOWN = _Marker("UNKNOWN")

SOURCE_AWS = "aws"             # CloudFormation's own values (IncludePropertyValues)
SOURCE_COMPUTED = "computed"   # the deployed template and parameters against the new ones

BLOCKING, WARNING, NOTE = "blocking", "warning", "note"


@dataclass(frozen=True)
class ValueChange:
    """One changed value of a resource: `path` from the resource's Properties, list elements named
    by their natural key where they have one (Rules[Id=...], Statement[Sid=...], Tags[Key=...])."""

    path: str
    before: object
    after: object
    source: str
    causes: tuple[str, ...] = ()
    recreation: str = ""           # Never | Conditionally | Always, when CloudFormation says


@dataclass(frozen=True)
class PermissionChange:
    """Statements gained or lost by a role, or by a resource's policy, as one readable line."""

    subject: str                   # "WorkerFunctionRole", "BackupKey key policy"
    verb: str                      # gains | loses
    effect: str
    principal: str                 # "" for a role's own (identity) policies
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: str = ""

    @property
    def text(self) -> str:
        if self.effect == "Attach":
            return f"{self.subject} {self.verb} managed policy {', '.join(self.resources)}"
        who = f"{self.principal} " if self.principal else ""
        what = f"{who}{', '.join(self.actions)}" + (f" on {', '.join(self.resources)}" if self.resources else "")
        effect = "" if self.effect == "Allow" and not self.principal else f"{self.effect} "
        when = f" when {self.condition}" if self.condition else ""
        return f"{self.subject} {self.verb} {effect}{what}{when}"


@dataclass(frozen=True)
class Finding:
    """A forecast of what the change will do or fail to do. Blocking ones refuse the change set
    unless accepted by ID (`--accept KIND:LogicalId`)."""

    kind: str
    logical_id: str
    severity: str
    message: str
    accepted: bool = False
    data: dict = field(default_factory=dict, compare=False)   # the figures behind the message, for --json

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.logical_id}"

    @property
    def blocks(self) -> bool:
        return self.severity == BLOCKING and not self.accepted


@dataclass(frozen=True)
class ResourceReview:
    change: Change
    values: tuple[ValueChange, ...] = ()
    permissions: tuple[PermissionChange, ...] = ()

    @property
    def property_names(self) -> list[str]:
        """The changed top-level properties, each with what caused it (for the table)."""
        names: list[str] = []
        for value in self.values:
            name = value.path.split(".")[0].split("[")[0]
            if value.causes:
                name = f"{name} (from {', '.join(value.causes)})"
            if name not in names:
                names.append(name)
        return names


@dataclass(frozen=True)
class StackReview:
    """One stack's change set as reviewed: what changes, what the guard and the forecast say."""

    label: str
    stack_name: str
    region: str
    change_set: ChangeSet
    parameters: tuple[tuple[str, str | None, str], ...] = ()   # (key, deployed or None, new)
    resources: tuple[ResourceReview, ...] = ()
    guard_violations: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocks]

    @property
    def blocked(self) -> bool:
        return bool(self.guard_violations or self.blocking)
