"""AWS's policy evaluation logic in pure Python (standard library only): identity, resource, KMS
key and trust policies, every condition operator, and CloudFormation intrinsics resolved so the
committed templates' policies can be evaluated as AWS would evaluate them.

    from backup_cfn.permissions.iam import Principal, Request, evaluate, parse_policy

    decision = evaluate(Request(role, "s3:GetObject", "arn:aws:s3:::bucket/key"),
                        identity_policies=[parse_policy(doc, "Worker/inline")],
                        resource_policies=[parse_policy(bucket_policy, "BucketPolicy")])
    assert decision.allowed, decision.details()

docs/permissions.md says what it models and what it cannot see.
"""

from .conditions import Context, ContextValue, PolicyError, evaluate_condition, parse_operator
from .evaluate import (
    ConditionMiss,
    Decision,
    Outcome,
    ResourceKind,
    StatementRef,
    evaluate,
    infer_resource_kind,
)
from .matching import arn_match, glob_match
from .policy import Effect, Policy, PrincipalSpec, Statement, parse_policy
from .principals import Principal, PrincipalKind, Request, default_environment
from .store import PolicyStore

__all__ = [
    "ConditionMiss", "Context", "ContextValue", "Decision", "Effect", "Outcome", "Policy", "PolicyError",
    "PolicyStore", "Principal", "PrincipalKind", "PrincipalSpec", "Request", "ResourceKind", "Statement",
    "StatementRef", "arn_match", "default_environment", "evaluate", "evaluate_condition", "glob_match",
    "infer_resource_kind", "parse_operator", "parse_policy",
]
