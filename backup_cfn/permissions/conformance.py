"""The permission conformance check: every recorded call of every principal, and everything AWS
services do for the stack, evaluated against the committed templates with AWS's evaluation logic.
A denial names the principal, the call, what AWS would have to authorise, and the statement (or its
absence) that decides."""
from __future__ import annotations

from dataclasses import dataclass

from backup_cfn.permissions.iam import Request
from backup_cfn.permissions.model import DeploymentModel
from backup_cfn.permissions.recorder import Call
from backup_cfn.permissions.requests import Need, UnknownResource, UntranslatedCall, needs_of
from backup_cfn.permissions.services import ServiceAction, service_actions


@dataclass(frozen=True)
class Denial:
    principal: str
    what: str            # "s3.CopyObject" (a call) or "service" (an AWS service acting for the stack)
    why: str             # which part of the call (its source, its KMS use...)
    explanation: str     # the evaluator's, or why the call could not be evaluated

    def line(self) -> str:
        return f"{self.principal} {self.what} ({self.why}): {self.explanation}"


def _evaluate(model: DeploymentModel, principal_name: str, principal, need: Need, what: str,
              seen: dict) -> Denial | None:
    key = (principal_name, need.key())
    if key not in seen:
        context = dict(need.context)
        if "kms:CallerAccount" in context and principal.account:
            context["kms:CallerAccount"] = principal.account   # the vault's roles call from the vault account
        decision = model.store.evaluate(Request(principal, need.action, need.resource, context))
        seen[key] = None if decision.allowed else decision.explain()
    if seen[key] is None:
        return None
    return Denial(principal_name, what, need.why, seen[key])


def check_calls(model: DeploymentModel, calls: list[Call]) -> list[Denial]:
    denials, seen = [], {}
    for call in dict.fromkeys(calls):
        what = f"{call.service}.{call.operation}" + (" (declared)" if call.source == "declared" else "")
        try:
            needs = needs_of(model, call)
        except (UntranslatedCall, UnknownResource) as exc:
            denials.append(Denial(call.principal, what, "not evaluated", str(exc)))
            continue
        principal = model.principal(call.principal)
        denials += [d for d in (_evaluate(model, call.principal, principal, n, what, seen) for n in needs) if d]
    return list(dict.fromkeys(denials))


def check_services(model: DeploymentModel, actions: list[ServiceAction] | None = None) -> list[Denial]:
    denials, seen = [], {}
    for action in actions if actions is not None else service_actions(model):
        denial = _evaluate(model, action.actor, action.principal(model), action.need, "service", seen)
        if denial:
            denials.append(denial)
    return list(dict.fromkeys(denials))
