"""Reading a stack while CloudFormation works on it: its state, its new events as they happen, and
the few events that explain a failure."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from botocore.exceptions import ClientError

SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "DELETE_COMPLETE"})
ROLLED_BACK = frozenset({"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"})
FAILED = frozenset({"CREATE_FAILED", "ROLLBACK_FAILED", "UPDATE_FAILED", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED",
                    "IMPORT_ROLLBACK_FAILED"}) | ROLLED_BACK
# Events that only echo an earlier failure: CloudFormation cancels the siblings of a failed resource.
_CASCADE_MARKERS = ("cancelled", "canceled", "Resource creation cancelled", "Resource update cancelled",
                    "The following resource(s) failed to")


@dataclass(frozen=True)
class Poll:
    """How politely to ask CloudFormation: seconds between calls, and the sleep used (tests pass a no-op)."""

    interval: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def wait(self) -> None:
        self.sleep(self.interval)


def describe_stack(cloudformation, stack_name: str) -> dict | None:
    """The stack, or None when CloudFormation does not know it (or only as deleted)."""
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            return None
        raise
    return None if stack["StackStatus"] == "DELETE_COMPLETE" else stack


def is_busy(status: str) -> bool:
    return status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"


def latest_event_id(cloudformation, stack_id: str) -> str | None:
    events = cloudformation.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    return events[0]["EventId"] if events else None


def events_since(cloudformation, stack_id: str, last_seen: str | None) -> list[dict]:
    """Events after `last_seen`, oldest first (the API lists newest first, a page at a time)."""
    newer: list[dict] = []
    token = None
    while True:
        kwargs = {"StackName": stack_id, **({"NextToken": token} if token else {})}
        page = cloudformation.describe_stack_events(**kwargs)
        for event in page.get("StackEvents", []):
            if event["EventId"] == last_seen:
                return newer[::-1]
            newer.append(event)
        token = page.get("NextToken")
        if not token:
            return newer[::-1]


def follow(cloudformation, stack_id: str, last_seen: str | None, poll: Poll,
           on_event: Callable[[dict], None]) -> tuple[dict, list[dict]]:
    """Poll until the stack leaves *_IN_PROGRESS, handing each new event to `on_event` as it
    appears; returns the final stack and every event of this operation."""
    seen: list[dict] = []
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_id)["Stacks"][0]
        fresh = events_since(cloudformation, stack_id, last_seen)
        for event in fresh:
            on_event(event)
        if fresh:
            last_seen = fresh[-1]["EventId"]
            seen += fresh
        if not is_busy(stack["StackStatus"]):
            return stack, seen
        poll.wait()


def root_causes(events: list[dict], stack_name: str, limit: int = 5) -> list[dict]:
    """The first failed resources and their reasons, without the cascade of cancellations; the
    stack's own failure reason when no resource explains it."""
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("_FAILED")]
    resources = [e for e in failed if e.get("LogicalResourceId") != stack_name
                 and not any(m in (e.get("ResourceStatusReason") or "") for m in _CASCADE_MARKERS)]
    if resources:
        return resources[:limit]
    stack_level = [e for e in events if e.get("LogicalResourceId") == stack_name and e.get("ResourceStatusReason")
                   and e.get("ResourceStatus") not in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS")]
    return (failed or stack_level)[:limit]


def all_events(cloudformation, stack_id: str) -> list[dict]:
    """Every event of the stack, oldest first."""
    return events_since(cloudformation, stack_id, None)
