"""What every resource is given the same way: tags, what happens to it when the stack lets go of
it, and the checkov checks that do not apply to it (with the reason)."""
from __future__ import annotations

from troposphere import AWSObject, Tags

from backup_cfn.config import Environment


def tags(env: Environment, **extra: str) -> Tags:
    """A fresh Tags object per resource: troposphere's Tags.__add__ mutates its operand."""
    return Tags(**{**env.tag_dict, "BackupCfnEnvironment": env.name, **extra})


def retain(resource: AWSObject) -> AWSObject:
    """Stateful resources outlive a stack deletion or a replacement: data is never collateral.
    Except when the stack's first creation fails: then they hold no data yet, and keeping them
    (a named log group above all) would make the next attempt fail on "already exists"."""
    resource.DeletionPolicy = "RetainExceptOnCreate"
    resource.UpdateReplacePolicy = "Retain"
    return resource


def transient(resource: AWSObject) -> AWSObject:
    """Resources that hold work in flight, not data (queues: a run re-enqueues from the source).
    Deleting them with the stack is the intent, said explicitly."""
    resource.DeletionPolicy = "Delete"
    resource.UpdateReplacePolicy = "Delete"
    return resource


def skip_lint(resource: AWSObject, reasons: dict[str, str]) -> AWSObject:
    """The cfn-lint rules that do not apply to this resource, each with its reason (printed by
    `backup-cfn validate`, like the checkov skips)."""
    if not reasons or not all(reasons.values()):
        raise ValueError(f"{resource.title}: every skipped rule needs a reason")
    metadata = dict(getattr(resource, "Metadata", {}) or {})
    metadata["cfn-lint"] = {"config": {"ignore_checks": sorted(reasons)}}
    metadata[LINT_SKIP_REASONS] = dict(sorted(reasons.items()))
    resource.Metadata = metadata
    return resource


LINT_SKIP_REASONS = "cfn-lint-skip-reasons"
# Control Tower's CT.S3.PR.8 recognises the object ARN in a TLS-only statement only as
# Fn::Join ["", [GetAtt Bucket.Arn, "/*"]]; cfn-lint's I1022 prefers Fn::Sub for exactly that form.
TLS_STATEMENT_JOIN = {"I1022": "the TLS-only statement's object ARN is a Fn::Join: Control Tower's CT.S3.PR.8 "
                               "accepts no Fn::Sub there"}


def skip_checks(resource: AWSObject, reasons: dict[str, str]) -> AWSObject:
    """Record, in the resource itself, each checkov check that does not apply and why; `make lint`
    prints the list. A skip without a reason is not accepted."""
    if not reasons or not all(reasons.values()):
        raise ValueError(f"{resource.title}: every skipped check needs a reason")
    metadata = dict(getattr(resource, "Metadata", {}) or {})
    skips = list(metadata.get("checkov", {}).get("skip", []))
    skips += [{"id": check, "comment": reason} for check, reason in sorted(reasons.items())]
    metadata["checkov"] = {"skip": skips}
    resource.Metadata = metadata
    return resource
