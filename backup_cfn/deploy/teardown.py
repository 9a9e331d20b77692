"""`delete`: the primary stack, then the replica, after confirmation; protected stacks are refused,
and the resources that outlive the stacks (DeletionPolicy Retain) are listed."""
from __future__ import annotations

import json
from dataclasses import dataclass

from rich.console import Console

from backup_cfn.deploy import progress, stack_events
from backup_cfn.deploy.stack_spec import Options
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.errors import UserError


@dataclass(frozen=True)
class Target:
    label: str
    name: str
    cloudformation: object

    @property
    def region(self) -> str:
        return self.cloudformation.meta.region_name


def retained_resources(cloudformation, stack_id: str) -> list[dict]:
    """Resources the stack will leave behind: DeletionPolicy Retain in the deployed template."""
    body = cloudformation.get_template(StackName=stack_id)["TemplateBody"]
    if isinstance(body, str):
        body = json.loads(body)
    retained = {logical_id for logical_id, resource in body.get("Resources", {}).items()
                if resource.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate", "Snapshot")}
    resources = []
    token = None
    while True:
        page = cloudformation.list_stack_resources(StackName=stack_id, **({"NextToken": token} if token else {}))
        resources += [r for r in page.get("StackResourceSummaries", []) if r["LogicalResourceId"] in retained]
        token = page.get("NextToken")
        if not token:
            return sorted(resources, key=lambda r: r["LogicalResourceId"])


def delete_environment(env_name: str, targets: list[Target], options: Options, console: Console, poll: Poll) -> list[str]:
    """Delete the targets in order; returns the names deleted."""
    found = []
    for target in targets:
        stack = stack_events.describe_stack(target.cloudformation, target.name)
        if stack is None:
            console.print(f"{target.label} stack {target.name} ({target.region}): not deployed")
            continue
        if stack_events.is_busy(stack["StackStatus"]):
            raise UserError(f"{target.name} ({target.region}) is {stack['StackStatus']}: wait for it to finish")
        if stack.get("EnableTerminationProtection"):
            raise UserError(
                f"{target.name} ({target.region}) has termination protection; to delete it, lift it first with "
                f"`aws cloudformation update-termination-protection --no-enable-termination-protection "
                f"--stack-name {target.name} --region {target.region}`")
        found.append((target, stack))
    if not found:
        console.print(f"nothing to delete for environment '{env_name}'")
        return []
    for target, stack in found:
        retained = retained_resources(target.cloudformation, stack["StackId"])
        console.print(f"{target.label} stack {target.name} ({target.region}) will be deleted; "
                      f"{len(retained)} resources outlive it:")
        for resource in retained:
            console.print(f"  {resource['LogicalResourceId']} ({resource['ResourceType']}): "
                          f"{resource.get('PhysicalResourceId', '')}")
    if not options.yes:
        if not options.interactive:
            raise UserError("no terminal to confirm the deletion on: rerun with --yes")
        names = ", ".join(target.name for target, _ in found)
        if not options.confirm(f"Delete {names}?"):
            raise UserError("declined: nothing was deleted")
    deleted = []
    for target, stack in found:
        last_seen = stack_events.latest_event_id(target.cloudformation, stack["StackId"])
        target.cloudformation.delete_stack(StackName=stack["StackId"])
        final, seen = stack_events.follow(target.cloudformation, stack["StackId"], last_seen, poll,
                                    lambda e: console.print(progress.event_line(e)))
        if final["StackStatus"] != "DELETE_COMPLETE":
            causes = stack_events.root_causes(seen, target.name)
            for line in progress.cause_lines(causes):
                console.print(line)
            raise UserError(f"{target.name} ({target.region}) ended {final['StackStatus']}: "
                            f"{progress.cause_summary(causes)}")
        console.print(f"[green]{target.name} deleted[/green]")
        deleted.append(target.name)
    return deleted
