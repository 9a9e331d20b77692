"""What the operator sees while CloudFormation works: stack events as they happen under a progress
bar, the outputs at the end, and the few events that explain a failure."""
from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

_STATUS_STYLES = (("FAILED", "bold red"), ("ROLLBACK", "red"), ("COMPLETE", "green"), ("IN_PROGRESS", "yellow"))


def status_style(status: str) -> str:
    for marker, style in _STATUS_STYLES:
        if marker in status:
            return style
    return ""


def event_line(event: dict) -> Text:
    status = event.get("ResourceStatus", "")
    text = Text()
    timestamp = event.get("Timestamp")
    text.append(f"{timestamp:%H:%M:%S} " if hasattr(timestamp, "strftime") else "")
    text.append(f"{status:<28}", style=status_style(status))
    text.append(f" {event.get('LogicalResourceId', '')}")
    text.append(f" ({event.get('ResourceType', '')})", style="dim")
    reason = event.get("ResourceStatusReason")
    if reason and reason != "User Initiated":
        text.append(f" {reason}", style="red" if "FAILED" in status else "dim")
    return text


class ResourceProgress:
    """Called with each stack event: prints it above the bar and counts the resources finished."""

    def __init__(self, progress: Progress, task, total: int):
        self.progress, self.task, self.total = progress, task, total
        self.finished: set[str] = set()

    def __call__(self, event: dict) -> None:
        self.progress.console.print(event_line(event))
        status = event.get("ResourceStatus", "")
        if event.get("ResourceType") != "AWS::CloudFormation::Stack" and status.endswith(("_COMPLETE", "_FAILED")):
            self.finished.add(event.get("LogicalResourceId", ""))
            self.progress.update(self.task, completed=min(len(self.finished), self.total))


@contextmanager
def resource_progress(console: Console, description: str, total: int):
    """A progress bar of resources finished (of the change set's `total`), with each event printed
    above it as it happens. Yields the ResourceProgress to hand the events to."""
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    task = progress.add_task(description, total=max(total, 1))
    with progress:
        yield ResourceProgress(progress, task, max(total, 1))
        progress.update(task, completed=max(total, 1))


def outputs_table(title: str, outputs: list[dict]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("Output")
    table.add_column("Value", overflow="fold")
    for output in sorted(outputs, key=lambda o: o["OutputKey"]):
        table.add_row(output["OutputKey"], output["OutputValue"])
    return table


def cause_lines(causes: list[dict]) -> list[Text]:
    lines = []
    for event in causes:
        line = Text("  ")
        line.append(event.get("LogicalResourceId", ""), style="bold")
        line.append(f" ({event.get('ResourceType', '')}) {event.get('ResourceStatus', '')}: ", style="red")
        line.append(event.get("ResourceStatusReason") or "no reason given")
        lines.append(line)
    return lines


def cause_summary(causes: list[dict]) -> str:
    """The first cause as plain text, for the one-line error."""
    if not causes:
        return "no failure reason recorded"
    first = causes[0]
    return f"{first.get('LogicalResourceId')} {first.get('ResourceStatus')}: {first.get('ResourceStatusReason')}"
