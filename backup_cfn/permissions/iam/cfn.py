"""CloudFormation for the evaluator: resolve a template's intrinsics (cfn_resolver), the deploy-time
values of its resources (cfn_values), and every policy it holds as a PolicyStore (cfn_policies)."""

from .cfn_policies import ExtractedPolicy, Extraction, build_policy_store, extract_policies
from .cfn_resolver import Namer, Pseudo, Resolver, default_namer, find_intrinsics
from .cfn_values import NO_VALUE, CfnError, UnresolvedError, default_attributes

__all__ = [
    "NO_VALUE", "CfnError", "ExtractedPolicy", "Extraction", "Namer", "Pseudo", "Resolver", "UnresolvedError",
    "build_policy_store", "default_attributes", "default_namer", "extract_policies", "find_intrinsics",
]
