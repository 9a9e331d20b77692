"""Who makes a request and what it asks for: principals (with the global condition keys AWS
fills in for them) and requests."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .conditions import ContextValue

class PrincipalKind(str, enum.Enum):
    """Who is making the request, as far as policy evaluation cares."""

    ASSUMED_ROLE = "assumed-role"  # a role session: how Lambda functions, ECS tasks ... act
    ROLE = "role"  # the role itself (rare as a requester; kept for completeness)
    USER = "user"
    ACCOUNT_ROOT = "root"
    FEDERATED_USER = "federated-user"  # GetFederationToken session
    SERVICE = "service"  # an AWS service principal, e.g. cloudtrail.amazonaws.com
    WEB_IDENTITY = "web-identity"  # a Federated principal before it assumes a role
    ANONYMOUS = "anonymous"


_PRINCIPAL_TYPE_KEY = {
    PrincipalKind.ASSUMED_ROLE: "AssumedRole",
    PrincipalKind.ROLE: "AssumedRole",
    PrincipalKind.USER: "User",
    PrincipalKind.ACCOUNT_ROOT: "Account",
    PrincipalKind.FEDERATED_USER: "FederatedUser",
    PrincipalKind.ANONYMOUS: "Anonymous",
}


def _arn_parts(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts


@dataclass(frozen=True)
class Principal:
    """The requester.  Build one with the class methods rather than by hand.

    ``arn`` is the principal's own ARN (for a service, its service principal
    name); ``role_arn`` is set for role sessions so that a resource policy
    naming the role matches the session; ``name`` is only a label for
    explanations (e.g. the CloudFormation logical ID).
    """

    kind: PrincipalKind
    arn: str
    account: str | None = None
    role_arn: str | None = None
    name: str | None = None

    # -- constructors ------------------------------------------------------

    @classmethod
    def assumed_role(cls, role_arn: str, session_name: str = "session", *, name: str | None = None) -> Principal:
        """A session of ``role_arn`` -- what a Lambda function's code runs as.

        The session ARN drops the role's path:
        ``arn:aws:sts::ACCOUNT:assumed-role/ROLE-NAME/SESSION``.
        """
        part = _arn_parts(role_arn)
        if part[2] != "iam" or not part[5].startswith("role/"):
            raise ValueError(f"not a role ARN: {role_arn!r}")
        role_name = part[5].rsplit("/", 1)[-1]
        session_arn = f"arn:{part[1]}:sts::{part[4]}:assumed-role/{role_name}/{session_name}"
        return cls(PrincipalKind.ASSUMED_ROLE, session_arn, part[4], role_arn, name or role_name)

    @classmethod
    def role(cls, role_arn: str, *, name: str | None = None) -> Principal:
        part = _arn_parts(role_arn)
        return cls(PrincipalKind.ROLE, role_arn, part[4], role_arn, name or part[5].rsplit("/", 1)[-1])

    @classmethod
    def user(cls, user_arn: str, *, name: str | None = None) -> Principal:
        part = _arn_parts(user_arn)
        return cls(PrincipalKind.USER, user_arn, part[4], None, name or part[5].rsplit("/", 1)[-1])

    @classmethod
    def account_root(cls, account_id: str, partition: str = "aws") -> Principal:
        return cls(
            PrincipalKind.ACCOUNT_ROOT,
            f"arn:{partition}:iam::{account_id}:root",
            account_id,
            None,
            f"root({account_id})",
        )

    @classmethod
    def federated_user(cls, account_id: str, user_name: str, partition: str = "aws") -> Principal:
        arn = f"arn:{partition}:sts::{account_id}:federated-user/{user_name}"
        return cls(PrincipalKind.FEDERATED_USER, arn, account_id, None, user_name)

    @classmethod
    def service(cls, service_principal: str) -> Principal:
        """An AWS service acting on its own behalf, e.g. ``cloudtrail.amazonaws.com``."""
        return cls(PrincipalKind.SERVICE, service_principal, None, None, service_principal)

    @classmethod
    def web_identity(cls, provider: str) -> Principal:
        return cls(PrincipalKind.WEB_IDENTITY, provider, None, None, provider)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(PrincipalKind.ANONYMOUS, "*", None, None, "anonymous")

    # -- derived -----------------------------------------------------------

    @property
    def label(self) -> str:
        return self.name or self.arn

    @property
    def has_identity_policies(self) -> bool:
        """Services, web identities and anonymous callers have no identity-based policies."""
        return self.kind in (
            PrincipalKind.ASSUMED_ROLE,
            PrincipalKind.ROLE,
            PrincipalKind.USER,
            PrincipalKind.FEDERATED_USER,
        )

    def context(self) -> dict[str, ContextValue]:
        """The global condition keys AWS derives from the principal.

        ``aws:PrincipalArn`` of a role session is the *role* ARN (IAM User
        Guide, aws:PrincipalArn), which is what ``ArnNotEquals aws:PrincipalArn``
        guards in bucket policies compare against.
        """
        out: dict[str, ContextValue] = {}
        if self.kind == PrincipalKind.SERVICE:
            out["aws:PrincipalIsAWSService"] = "true"
            out["aws:PrincipalServiceName"] = self.arn
            out["aws:PrincipalServiceNamesList"] = [self.arn]
            return out
        if self.kind in (PrincipalKind.ANONYMOUS, PrincipalKind.WEB_IDENTITY):
            out["aws:PrincipalIsAWSService"] = "false"
            if self.kind == PrincipalKind.ANONYMOUS:
                out["aws:PrincipalType"] = "Anonymous"
            return out
        out["aws:PrincipalIsAWSService"] = "false"
        out["aws:PrincipalArn"] = self.role_arn if self.kind == PrincipalKind.ASSUMED_ROLE else self.arn
        if self.account:
            out["aws:PrincipalAccount"] = self.account
        out["aws:PrincipalType"] = _PRINCIPAL_TYPE_KEY[self.kind]
        if self.kind == PrincipalKind.USER:
            out["aws:username"] = self.arn.rsplit("/", 1)[-1]
        return out


def default_environment(now: datetime | None = None) -> dict[str, ContextValue]:
    """Keys AWS documents as present in every request.

    ``aws:SecureTransport`` is "always present in the request context"; SDK
    calls use TLS, so it defaults to ``true``.  Pass ``False`` in the request
    context to test an HTTP request.
    """
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return {
        "aws:SecureTransport": "true",
        "aws:CurrentTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(moment.timestamp())),
    }


@dataclass(frozen=True)
class Request:
    """One authorization request: principal, IAM action, resource ARN, extra context.

    ``resource`` is ``"*"`` for actions without resource-level permissions.
    ``resource_account`` is the owner of the resource; it is read from the ARN
    when the ARN carries one, and must be given for S3 ARNs when the bucket is
    in another account (otherwise same-account is assumed).
    """

    principal: Principal
    action: str
    resource: str = "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    resource_account: str | None = None

    def __post_init__(self) -> None:
        if ":" not in self.action:
            raise ValueError(f"action {self.action!r} is not of the form service:Action")
