"""AWS's policy evaluation logic for identity-based and resource-based policies.

What is modelled (IAM User Guide, "Policy evaluation logic" and "Cross-account
policy evaluation logic"; AWS KMS Developer Guide, "Key policies"):

1. **Explicit deny wins.**  A ``Deny`` statement that applies -- in any
   identity-based policy of the principal, or in a resource-based policy whose
   Principal/NotPrincipal covers the principal -- gives a final Deny.
2. **Same account, ordinary resource** (S3 bucket, SQS queue, SNS topic ...):
   an ``Allow`` in an identity-based policy *or* in the resource-based policy
   suffices.  A resource-policy statement naming the role ARN, the session
   ARN, the user ARN or ``*`` grants directly; one naming the account
   (``123456789012`` or ``arn:aws:iam::123456789012:root``) "delegates
   authority to the account", so it only helps if IAM (an identity policy)
   also allows.
3. **KMS key policies and IAM role trust policies** "must explicitly allow
   access for principals": the resource policy has to allow, either naming the
   principal (direct) or naming the account, which delegates to identity
   policies ("Without this permission, IAM policies that allow access to the
   key are ineffective, although IAM policies that deny access to the key are
   still effective").  An identity-policy Allow alone is never enough.
4. **Cross account**: the principal's account must allow (identity policy)
   *and* the resource's account must allow (resource policy naming the
   principal or its account); a deny in either is final.
5. **Service principals** (``cloudtrail.amazonaws.com``) have no identity
   policies; only resource-based policy statements naming the service (or
   ``*``) can allow them.
6. **The account root user** has full access within its own account unless
   explicitly denied, except that KMS key policies must still allow it.

Not modelled: SCPs/RCPs, permissions boundaries, session policies, VPC
endpoint policies, ACLs, grants.  docs/permissions.md, "What the evaluation
cannot see", has the full list.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .conditions import Context, PolicyError
from .matching import glob_match
from .policy import Effect, Policy, PrincipalSpec, Statement
from .principals import Principal, PrincipalKind, Request, default_environment

class ResourceKind(str, enum.Enum):
    """How a resource-based policy combines with identity policies."""

    GENERIC = "generic"  # identity OR resource policy (same account)
    KMS_KEY = "kms-key"  # key policy must allow (directly or via the account principal)
    ROLE_TRUST = "role-trust"  # trust policy must allow, same rule as KMS


ASSUME_ACTIONS = {
    "sts:assumerole",
    "sts:assumerolewithsaml",
    "sts:assumerolewithwebidentity",
    "sts:tagsession",
    "sts:setsourceidentity",
    "sts:setcontext",
}


def infer_resource_kind(action: str, resource: str) -> ResourceKind:
    """KMS actions on a key ARN and STS assume-role actions on a role ARN are special."""
    if action.lower().startswith("kms:") and glob_match("arn:*:kms:*:*:key/*", resource):
        return ResourceKind.KMS_KEY
    if action.lower() in ASSUME_ACTIONS and glob_match("arn:*:iam::*:role/*", resource):
        return ResourceKind.ROLE_TRUST
    return ResourceKind.GENERIC


class Outcome(str, enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class StatementRef:
    """A statement cited by a decision."""

    policy: str
    sid: str | None
    index: int
    effect: Effect
    source: str  # "identity" | "resource"

    @property
    def label(self) -> str:
        return self.sid if self.sid else f"#{self.index}"

    def __str__(self) -> str:
        return f"{self.policy} statement {self.label}"


@dataclass(frozen=True)
class ConditionMiss:
    """A statement that matched action, resource and principal but whose condition failed."""

    statement: StatementRef
    clause: str
    key: str
    request_values: tuple[str, ...] | None

    def __str__(self) -> str:
        got = (
            "<absent>"
            if self.request_values is None
            else (self.request_values[0] if len(self.request_values) == 1 else list(self.request_values))
        )
        return f"{self.statement} ({self.statement.effect.value}) needs {self.clause}; request has {got!r}"


@dataclass(frozen=True)
class Decision:
    """The result of evaluating a request, with enough detail to explain it."""

    request: Request
    outcome: Outcome
    reason: str
    deciding: tuple[StatementRef, ...] = ()
    allows: tuple[StatementRef, ...] = ()
    denies: tuple[StatementRef, ...] = ()
    near_misses: tuple[ConditionMiss, ...] = ()
    resource_kind: ResourceKind = ResourceKind.GENERIC
    context: Context = field(default_factory=Context, repr=False)

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def explain(self) -> str:
        """One line, e.g. ``WorkerFunctionRole s3:PutObjectTagging on arn:...: implicit deny (no statement allows it)``."""
        r = self.request
        return f"{r.principal.label} {r.action} on {r.resource}: {self.reason}"

    def details(self) -> str:
        """The one-line explanation plus near misses and the request context."""
        lines = [self.explain()]
        if self.near_misses:
            lines.append("  statements whose condition failed:")
            lines.extend(f"    {m}" for m in self.near_misses)
        ctx = self.context.as_dict()
        if ctx:
            lines.append("  request context:")
            for k in sorted(ctx, key=str.lower):
                v = ctx[k]
                lines.append(f"    {k} = {v[0] if len(v) == 1 else list(v)!r}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()


# --------------------------------------------------------------------------
# Statement matching


class _PrincipalMatch(enum.Enum):
    NONE = 0
    ACCOUNT = 1  # named only through its account: delegates to IAM
    DIRECT = 2


def _listed_identities(spec: PrincipalSpec, principal: Principal) -> list[bool]:
    """For NotPrincipal: is each identity in the principal's chain listed?

    The IAM User Guide warns that for NotPrincipal with Deny "AWS might
    validate the account first, then the role, and then the assumed-role
    user", so each of account, role and session must be listed for the
    principal to escape the deny.
    """
    if spec.everyone:
        return [True]
    k = principal.kind
    if k == PrincipalKind.SERVICE:
        return [principal.arn.lower() in {s.lower() for s in spec.service}]
    if k == PrincipalKind.WEB_IDENTITY:
        return [principal.arn in spec.federated]
    if k == PrincipalKind.ANONYMOUS:
        return [False]
    chain = [principal.account in spec.accounts]
    if k == PrincipalKind.ACCOUNT_ROOT:
        return chain
    if k == PrincipalKind.ASSUMED_ROLE and principal.role_arn:
        chain.append(principal.role_arn in spec.arns)
    chain.append(principal.arn in spec.arns)
    return chain


def _match_principal(spec: PrincipalSpec, principal: Principal) -> _PrincipalMatch:
    if spec.everyone:
        return _PrincipalMatch.DIRECT
    k = principal.kind
    if k == PrincipalKind.SERVICE:
        hit = principal.arn.lower() in {s.lower() for s in spec.service}
        return _PrincipalMatch.DIRECT if hit else _PrincipalMatch.NONE
    if k == PrincipalKind.WEB_IDENTITY:
        return _PrincipalMatch.DIRECT if principal.arn in spec.federated else _PrincipalMatch.NONE
    if k == PrincipalKind.ANONYMOUS:
        return _PrincipalMatch.NONE
    arns = spec.arns
    if principal.arn in arns or (k == PrincipalKind.ASSUMED_ROLE and principal.role_arn in arns):
        return _PrincipalMatch.DIRECT
    if principal.account is not None and principal.account in spec.accounts:
        # Naming the account is naming the root user itself, but only
        # delegates for everyone else in the account.
        return _PrincipalMatch.DIRECT if k == PrincipalKind.ACCOUNT_ROOT else _PrincipalMatch.ACCOUNT
    return _PrincipalMatch.NONE


def _statement_principal(stmt: Statement, principal: Principal) -> _PrincipalMatch:
    if stmt.principal is not None:
        return _match_principal(stmt.principal, principal)
    assert stmt.not_principal is not None
    listed = _listed_identities(stmt.not_principal, principal)
    # Deny: applies unless every identity is listed.  Allow: only to principals
    # none of whose identities is listed.
    applies = not all(listed) if stmt.effect is Effect.DENY else not any(listed)
    return _PrincipalMatch.DIRECT if applies else _PrincipalMatch.NONE


def _action_matches(stmt: Statement, action: str) -> bool:
    hit = any(p.matches(action, ignore_case=True) for p in stmt.action_patterns())
    return hit if stmt.actions is not None else not hit


def _resource_matches(stmt: Statement, resource: str, ctx: Context) -> bool:
    if stmt.resources is None and stmt.not_resources is None:
        # Resource-based policies may omit Resource (role trust policies,
        # some SNS/SQS policies): the statement covers the attached resource.
        return True
    lookup = ctx.single
    hit = any(p.matches(resource, lookup) for p in stmt.resource_patterns())
    return hit if stmt.resources is not None else not hit


@dataclass
class _Collected:
    denies: list[StatementRef] = field(default_factory=list)
    identity_allows: list[StatementRef] = field(default_factory=list)
    direct_allows: list[StatementRef] = field(default_factory=list)
    account_allows: list[StatementRef] = field(default_factory=list)
    misses: list[ConditionMiss] = field(default_factory=list)


def _scan(
    policies: Iterable[Policy],
    source: str,
    request: Request,
    ctx: Context,
    out: _Collected,
) -> None:
    for policy in policies:
        for stmt in policy.statements:
            if source == "identity" and stmt.has_principal:
                raise PolicyError(
                    f"{policy.name} statement {stmt.label}: identity-based policies cannot have Principal/NotPrincipal"
                )
            if source == "identity" and stmt.resources is None and stmt.not_resources is None:
                raise PolicyError(
                    f"{policy.name} statement {stmt.label}: identity-based statements need Resource or NotResource"
                )
            if source == "resource" and not stmt.has_principal:
                raise PolicyError(
                    f"{policy.name} statement {stmt.label}: resource-based policies need Principal or NotPrincipal"
                )
            if not _action_matches(stmt, request.action):
                continue
            if not _resource_matches(stmt, request.resource, ctx):
                continue
            pmatch = _PrincipalMatch.DIRECT
            if source == "resource":
                pmatch = _statement_principal(stmt, request.principal)
                if pmatch is _PrincipalMatch.NONE:
                    continue
            ref = StatementRef(policy.name, stmt.sid, stmt.index, stmt.effect, source)
            result = stmt.condition.evaluate(ctx, variables=stmt.variables)
            if not result.ok:
                clause = result.failed
                assert clause is not None
                out.misses.append(ConditionMiss(ref, clause.describe(), clause.key, ctx.get(clause.key)))
                continue
            if stmt.effect is Effect.DENY:
                out.denies.append(ref)
            elif source == "identity":
                out.identity_allows.append(ref)
            elif pmatch is _PrincipalMatch.DIRECT:
                out.direct_allows.append(ref)
            else:
                out.account_allows.append(ref)


def _resource_account(request: Request, explicit: str | None) -> str | None:
    if request.resource_account:
        return request.resource_account
    if explicit:
        return explicit
    parts = request.resource.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and len(parts[4]) == 12 and parts[4].isdigit():
        return parts[4]
    return request.principal.account  # S3 ARNs and "*": assume same account


def _as_policies(value: Policy | Sequence[Policy] | None) -> tuple[Policy, ...]:
    if value is None:
        return ()
    if isinstance(value, Policy):
        return (value,)
    return tuple(value)


def _names(refs: Sequence[StatementRef]) -> str:
    return ", ".join(str(r) for r in refs)


def evaluate(
    request: Request,
    identity_policies: Policy | Sequence[Policy] | None = (),
    resource_policies: Policy | Sequence[Policy] | None = (),
    *,
    resource_account: str | None = None,
    resource_kind: ResourceKind | None = None,
    now: datetime | None = None,
) -> Decision:
    """Decide ``request`` against the principal's identity policies and the resource's policies.

    ``resource_kind`` defaults to :func:`infer_resource_kind` (KMS key
    policies and role trust policies must allow explicitly).  ``now`` fixes
    ``aws:CurrentTime``/``aws:EpochTime``; any key in ``request.context``
    overrides the defaults, including the principal-derived keys.
    """
    principal = request.principal
    identity = _as_policies(identity_policies)
    resource = _as_policies(resource_policies)
    if identity and not principal.has_identity_policies:
        raise ValueError(f"{principal.label}: a {principal.kind.value} principal has no identity-based policies")
    kind = resource_kind or infer_resource_kind(request.action, request.resource)

    ctx = Context(default_environment(now))
    ctx.update(principal.context())
    ctx.update(request.context)

    got = _Collected()
    _scan(identity, "identity", request, ctx, got)
    _scan(resource, "resource", request, ctx, got)

    def decide(outcome: Outcome, reason: str, deciding: Sequence[StatementRef] = ()) -> Decision:
        return Decision(
            request=request,
            outcome=outcome,
            reason=reason,
            deciding=tuple(deciding),
            allows=tuple(got.identity_allows + got.direct_allows + got.account_allows),
            denies=tuple(got.denies),
            near_misses=tuple(got.misses),
            resource_kind=kind,
            context=ctx,
        )

    if got.denies:
        return decide(Outcome.EXPLICIT_DENY, f"explicit deny by {_names(got.denies)}", got.denies)

    key_word = {ResourceKind.KMS_KEY: "key policy", ResourceKind.ROLE_TRUST: "trust policy"}.get(
        kind, "resource-based policy"
    )

    # Services, web identities and anonymous callers: resource policies only.
    if not principal.has_identity_policies and principal.kind != PrincipalKind.ACCOUNT_ROOT:
        if got.direct_allows:
            return decide(Outcome.ALLOW, f"allowed by {_names(got.direct_allows)}", got.direct_allows)
        why = "no resource-based policy statement allows it" if resource else "no resource-based policy applies"
        return decide(
            Outcome.IMPLICIT_DENY, f"implicit deny ({principal.kind.value} principals have no identity policies; {why})"
        )

    is_root = principal.kind == PrincipalKind.ACCOUNT_ROOT
    res_account = _resource_account(request, resource_account)
    same_account = principal.account is not None and principal.account == res_account
    # The root user has full access in its own account, which is the
    # principal side of a cross-account request too.
    identity_ok = bool(got.identity_allows) or is_root
    identity_why = _names(got.identity_allows) if got.identity_allows else "the root user's full access"

    if same_account and kind is ResourceKind.GENERIC:
        if got.identity_allows:
            return decide(Outcome.ALLOW, f"allowed by {_names(got.identity_allows)}", got.identity_allows)
        if got.direct_allows:
            return decide(Outcome.ALLOW, f"allowed by {_names(got.direct_allows)}", got.direct_allows)
        if is_root:
            return decide(Outcome.ALLOW, "allowed (root user of the owning account)")
        if got.account_allows:
            return decide(
                Outcome.IMPLICIT_DENY,
                f"implicit deny ({_names(got.account_allows)} names only the account, which delegates to IAM, "
                "and no identity-based policy allows it)",
            )
        return decide(Outcome.IMPLICIT_DENY, "implicit deny (no statement allows it)")

    if same_account:
        # KMS key policy / role trust policy: the resource policy must allow.
        if got.direct_allows:
            return decide(Outcome.ALLOW, f"allowed by {_names(got.direct_allows)}", got.direct_allows)
        if got.account_allows and identity_ok:
            deciding = got.account_allows + got.identity_allows
            return decide(
                Outcome.ALLOW,
                f"allowed by {identity_why}, enabled by {key_word} delegation to the account ({_names(got.account_allows)})",
                deciding,
            )
        if got.account_allows:
            return decide(
                Outcome.IMPLICIT_DENY,
                f"implicit deny ({key_word} delegates to IAM through the account principal in "
                f"{_names(got.account_allows)}, but no identity-based policy allows it)",
            )
        if got.identity_allows:
            return decide(
                Outcome.IMPLICIT_DENY,
                f"implicit deny ({_names(got.identity_allows)} would allow it, but the {key_word} neither allows the "
                "principal nor the account principal, so IAM policies cannot grant access)",
            )
        if not resource:
            return decide(Outcome.IMPLICIT_DENY, f"implicit deny (no {key_word} known for {request.resource})")
        return decide(Outcome.IMPLICIT_DENY, "implicit deny (no statement allows it)")

    # Cross-account: both sides must allow.
    resource_refs = got.direct_allows + got.account_allows
    if identity_ok and resource_refs:
        return decide(
            Outcome.ALLOW,
            f"allowed cross-account by {identity_why} and {_names(resource_refs)}",
            got.identity_allows + resource_refs,
        )
    if identity_ok:
        return decide(
            Outcome.IMPLICIT_DENY,
            f"implicit deny (cross-account: {identity_why} allows it in account {principal.account}, but no "
            f"{key_word} of account {res_account} allows the principal or its account)",
        )
    if resource_refs:
        return decide(
            Outcome.IMPLICIT_DENY,
            f"implicit deny (cross-account: {_names(resource_refs)} allows it, but no identity-based policy "
            f"in account {principal.account} does)",
        )
    return decide(Outcome.IMPLICIT_DENY, "implicit deny (no statement allows it)")
