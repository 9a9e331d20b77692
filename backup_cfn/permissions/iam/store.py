"""Every identity and resource policy of a system in one place, so a test can just ask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .evaluate import ASSUME_ACTIONS, Decision, ResourceKind, evaluate
from .matching import glob_match
from .policy import Policy
from .principals import Principal, PrincipalKind, Request


@dataclass(frozen=True)
class _ResourceEntry:
    name: str
    patterns: tuple[str, ...]
    policy: Policy
    account: str | None
    kind: ResourceKind | None


class PolicyStore:
    """Every identity and resource policy of a system, so tests can just ask.

    Identity policies are keyed by the principal ARN they are attached to (a
    role session picks up its role's policies).  Resource policies are
    registered with the ARN patterns they govern -- a bucket policy governs
    ``arn:aws:s3:::bucket`` and ``arn:aws:s3:::bucket/*``.
    """

    def __init__(self, *, now: datetime | None = None) -> None:
        self._identity: dict[str, list[Policy]] = {}
        self._resources: list[_ResourceEntry] = []
        self._principals: dict[str, Principal] = {}
        self.now = now

    def add_identity_policy(self, principal_arn: str, policy: Policy) -> None:
        self._identity.setdefault(principal_arn, []).append(policy)

    def add_resource_policy(
        self,
        policy: Policy,
        resources: Sequence[str],
        *,
        account: str | None = None,
        kind: ResourceKind | None = None,
        name: str | None = None,
    ) -> None:
        self._resources.append(_ResourceEntry(name or policy.name, tuple(resources), policy, account, kind))

    def add_principal(self, name: str, principal: Principal) -> None:
        """Register a principal under a friendly name (e.g. a logical ID)."""
        self._principals[name] = principal

    def principal(self, name: str) -> Principal:
        return self._principals[name]

    @property
    def principals(self) -> Mapping[str, Principal]:
        return dict(self._principals)

    def identity_policies_for(self, principal: Principal) -> list[Policy]:
        if not principal.has_identity_policies:
            return []
        key = principal.role_arn if principal.kind == PrincipalKind.ASSUMED_ROLE else principal.arn
        return list(self._identity.get(key or principal.arn, []))

    def resource_entries_for(self, resource: str) -> list[_ResourceEntry]:
        return [e for e in self._resources if any(glob_match(p, resource) for p in e.patterns)]

    def evaluate(self, request: Request, *, without: frozenset[str] = frozenset()) -> Decision:
        """`without`: resource policies (by name) to leave out, as if deleted first."""
        entries = [e for e in self.resource_entries_for(request.resource) if e.name not in without]
        # A trust policy only takes part in assume-role requests (iam:PassRole
        # on the same role ARN is an ordinary identity-policy decision).
        if request.action.lower() not in ASSUME_ACTIONS:
            entries = [e for e in entries if e.kind is not ResourceKind.ROLE_TRUST]
        kinds = {e.kind for e in entries if e.kind is not None}
        kind: ResourceKind | None = None
        for special in (ResourceKind.KMS_KEY, ResourceKind.ROLE_TRUST):
            if special in kinds:
                kind = special
        if kind is None and kinds:
            kind = ResourceKind.GENERIC
        accounts = {e.account for e in entries if e.account}
        return evaluate(
            request,
            self.identity_policies_for(request.principal),
            [e.policy for e in entries],
            resource_account=next(iter(accounts)) if len(accounts) == 1 else None,
            resource_kind=kind,
            now=self.now,
        )
