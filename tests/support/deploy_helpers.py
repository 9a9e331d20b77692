"""Helpers for the deploy tests: a miniature handler source, a quiet console, an API call recorder."""
from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from backup_cfn.deploy import handler_package
from backup_cfn.deploy.stack_events import Poll

NO_WAIT = Poll(interval=0, sleep=lambda seconds: None)


def console() -> Console:
    return Console(file=io.StringIO(), width=240, color_system=None, force_terminal=False)


def text(console_: Console) -> str:
    return console_.file.getvalue()


def handler_source(root: Path) -> Path:
    (root / "handlers").mkdir(parents=True, exist_ok=True)
    (root / "handlers" / "worker.py").write_text("import json\n\ndef handler(event, context):\n    return json.dumps(event)\n")
    return root


def package_builder(root: Path):
    return lambda: handler_package.build_package(handler_source(root))


class CallRecorder:
    """Every AWS API call made through the clients it is attached to, as (region, service, operation)."""

    def __init__(self, *clients):
        self.calls: list[tuple[str, str, str]] = []
        for client in clients:
            client.meta.events.register("before-call", self._record)

    def _record(self, model, context, **kwargs):
        self.calls.append((context.get("client_region", ""), model.service_model.service_name, model.name))

    def operations(self, service: str | None = None) -> list[str]:
        return [op for _, svc, op in self.calls if service is None or svc == service]


def with_resource(rendered: str, logical_id: str, resource: dict) -> str:
    """The rendered template with one more resource, rendered the same way."""
    document = json.loads(rendered)
    document["Resources"][logical_id] = resource
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
