"""Record every AWS call a principal makes: a botocore hook on each of its clients notes the
operation and its parameters before they are sent (an attempt needs the permission whether or not
it then succeeds). The conformance test turns each call into the requests AWS authorises
(permissions/requests.py) and evaluates them against the committed templates."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Call:
    principal: str          # the role's logical ID in the template (WorkerFunctionRole, RestoreRole...)
    service: str            # botocore's service name: s3, dynamodb, sqs, sns, cloudformation, lambda
    operation: str          # CopyObject, TransactWriteItems...
    params: dict
    region: str
    aliases: dict = field(default_factory=dict, compare=False, hash=False)   # emulator name -> logical ID
    source: str = "recorded"  # or "declared": a call the emulator cannot make (say so where it is used)

    def __hash__(self) -> int:
        return hash((self.principal, self.service, self.operation, repr(sorted(self.params.items(), key=str)),
                     self.region))


class Recorder:
    """Collects the calls of every client attached to it, each under the principal it acts as."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def attach(self, client, principal: str, aliases: dict[str, str] | None = None):
        service = client.meta.service_model.service_name
        region = client.meta.region_name
        known = dict(aliases or {})

        def record(params, model, **_):
            call = Call(principal, service, model.name, _plain(params), region, known)
            with self._lock:
                self.calls.append(call)

        client.meta.events.register(f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}",
                                    record)
        return client

    def declare(self, principal: str, service: str, operation: str, params: dict, region: str,
                aliases: dict[str, str] | None = None) -> None:
        """A call the documented path makes on AWS that the emulator cannot (e.g. invoking a function)."""
        with self._lock:
            self.calls.append(Call(principal, service, operation, dict(params), region, dict(aliases or {}),
                                   source="declared"))

    def distinct(self) -> list[Call]:
        with self._lock:
            return list(dict.fromkeys(self.calls))


def _plain(params: dict) -> dict:
    """The parameters without bodies and streams (which say nothing about permissions)."""
    return {k: v for k, v in params.items() if k not in ("Body",)}
