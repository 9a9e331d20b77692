"""`status`: both stacks' state, last events, outputs, drift, and whether they match this checkout."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from backup_cfn.deploy import progress, stack_events
from backup_cfn.deploy.outputs import outputs
from backup_cfn.deploy.stack_deployer import TAG_COMMIT, TAG_PACKAGE, TAG_TEMPLATE
from backup_cfn.deploy.stack_events import Poll

LAST_EVENTS = 5


@dataclass(frozen=True)
class StackStatus:
    label: str
    name: str
    region: str
    status: str | None                    # None: not deployed
    template_matches: bool | None = None
    package_matches: bool | None = None
    drift: str | None = None
    last_changed: str | None = None
    termination_protection: bool = False
    deployed_commit: str | None = None
    outputs: dict = field(default_factory=dict)
    last_events: tuple = ()

    def to_json(self) -> dict:
        """One stack in `status --json` (docs/json.md, backup-cfn/status)."""
        return {"label": self.label, "name": self.name, "region": self.region, "deployed": self.status is not None,
                "status": self.status, "last_changed": self.last_changed,
                "termination_protection": self.termination_protection, "deployed_commit": self.deployed_commit,
                "template_matches": self.template_matches, "package_matches": self.package_matches,
                "drift": self.drift, "outputs": dict(self.outputs), "last_events": list(self.last_events)}


def stack_status(cloudformation, *, label: str, name: str, rendered: str, console: Console, poll: Poll,
                 package_sha256: str | None = None, drift: bool = False) -> StackStatus:
    region = cloudformation.meta.region_name
    stack = stack_events.describe_stack(cloudformation, name)
    if stack is None:
        console.print(f"{label} stack {name} ({region}): [dim]not deployed[/dim]")
        return StackStatus(label, name, region, None)
    status = stack["StackStatus"]
    header = Text(f"{label} stack {name} ({region}): ")
    header.append(status, style=progress.status_style(status))
    updated = stack.get("LastUpdatedTime") or stack.get("CreationTime")
    if updated:
        header.append(f", last changed {updated:%Y-%m-%d %H:%M:%S %Z}")
    if stack.get("EnableTerminationProtection"):
        header.append(", termination protection on")
    console.print(header)

    tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
    template_matches = tags.get(TAG_TEMPLATE) == hashlib.sha256(rendered.encode()).hexdigest()
    console.print(f"  deployed from commit {tags.get(TAG_COMMIT, 'unknown (not deployed by backup-cfn)')}")
    console.print("  template: " + ("[green]matches this checkout[/green]" if template_matches
                                    else "[yellow]differs from this checkout[/yellow] (run diff)"))
    package_matches = None
    if package_sha256 is not None:
        package_matches = tags.get(TAG_PACKAGE) == package_sha256
        console.print("  handler package: " + ("[green]matches this checkout[/green]" if package_matches
                                               else "[yellow]differs from this checkout[/yellow]"))

    drift_status = stack.get("DriftInformation", {}).get("StackDriftStatus")
    if drift:
        drift_status = _detect_drift(cloudformation, stack["StackId"], console, poll)
    console.print(f"  drift: {drift_status or 'NOT_CHECKED'}" + ("" if drift else " (check with --drift)"))

    recent = stack_events.events_since(cloudformation, stack["StackId"], None)[-LAST_EVENTS:]
    if recent:
        console.print("  last events:")
        for event in recent:
            console.print(Text("    ") + progress.event_line(event))
    if stack.get("Outputs"):
        console.print(progress.outputs_table(f"{name} outputs", stack["Outputs"]))
    events = tuple({"time": e["Timestamp"].isoformat(), "logical_id": e["LogicalResourceId"],
                    "type": e["ResourceType"], "status": e["ResourceStatus"],
                    "reason": e.get("ResourceStatusReason", "")} for e in recent)
    return StackStatus(label, name, region, status, template_matches, package_matches, drift_status,
                       last_changed=updated.isoformat() if updated else None,
                       termination_protection=bool(stack.get("EnableTerminationProtection")),
                       deployed_commit=tags.get(TAG_COMMIT), outputs=outputs(stack), last_events=events)


def _detect_drift(cloudformation, stack_id: str, console: Console, poll: Poll) -> str:
    detection_id = cloudformation.detect_stack_drift(StackName=stack_id)["StackDriftDetectionId"]
    while True:
        result = cloudformation.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)
        if result["DetectionStatus"] != "DETECTION_IN_PROGRESS":
            break
        poll.wait()
    if result["DetectionStatus"] == "DETECTION_FAILED":
        console.print(f"  [yellow]drift detection failed: {result.get('DetectionStatusReason', '')}[/yellow]")
    drifted = cloudformation.describe_stack_resource_drifts(
        StackName=stack_id, StackResourceDriftStatusFilters=["MODIFIED", "DELETED"]).get("StackResourceDrifts", [])
    for resource in drifted:
        changed = ", ".join(d["PropertyPath"] for d in resource.get("PropertyDifferences", []))
        console.print(f"    [yellow]{resource['StackResourceDriftStatus']}[/yellow] {resource['LogicalResourceId']} "
                      f"({resource['ResourceType']}) {changed}")
    return result.get("StackDriftStatus", "UNKNOWN")
