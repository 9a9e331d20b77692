"""The least-privilege policy of whoever runs `deploy`, `diff`, `status` and `delete` for one
environment (`backup-cfn deployer-policy --env E`).

Three parts, each derived rather than written by hand:
- what the deploy code itself calls (DEPLOY_OPERATIONS; tests/permissions/test_deployer_policy.py records every
  call deploy, diff, status and delete make on the emulator and fails on one missing here);
- what CloudFormation calls with the deployer's credentials to create, read, update and delete the
  stacks' resources: the handler permissions AWS publishes in each resource type's schema (cfn-lint
  ships the schemas), for every resource type in the environment's templates;
- iam:PassRole for the stacks' own roles, only to the services that take them.
Every resource is scoped to this environment's names (`<stack name>-*`, the bootstrap stack, the
artifacts bucket). UNSCOPED holds the few actions AWS authorises on no resource; they get "*".
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.stack.bootstrap import STACK_NAME as BOOTSTRAP_STACK

# (service, operation) the deploy code makes -> the IAM action. GetCallerIdentity needs none.
DEPLOY_OPERATIONS = {
    ("cloudformation", "DescribeStacks"): "cloudformation:DescribeStacks",
    ("cloudformation", "DescribeStackEvents"): "cloudformation:DescribeStackEvents",
    ("cloudformation", "CreateStack"): "cloudformation:CreateStack",
    ("cloudformation", "UpdateStack"): "cloudformation:UpdateStack",
    ("cloudformation", "DeleteStack"): "cloudformation:DeleteStack",
    ("cloudformation", "CreateChangeSet"): "cloudformation:CreateChangeSet",
    ("cloudformation", "DescribeChangeSet"): "cloudformation:DescribeChangeSet",
    ("cloudformation", "ExecuteChangeSet"): "cloudformation:ExecuteChangeSet",
    ("cloudformation", "DeleteChangeSet"): "cloudformation:DeleteChangeSet",
    ("cloudformation", "ListChangeSets"): "cloudformation:ListChangeSets",
    ("cloudformation", "GetTemplate"): "cloudformation:GetTemplate",
    ("cloudformation", "ListStackResources"): "cloudformation:ListStackResources",
    ("cloudformation", "SetStackPolicy"): "cloudformation:SetStackPolicy",
    ("cloudformation", "UpdateTerminationProtection"): "cloudformation:UpdateTerminationProtection",
    ("cloudformation", "DetectStackDrift"): "cloudformation:DetectStackDrift",
    ("cloudformation", "DescribeStackDriftDetectionStatus"): "cloudformation:DescribeStackDriftDetectionStatus",
    ("cloudformation", "DescribeStackResourceDrifts"): "cloudformation:DescribeStackResourceDrifts",
    ("cloudformation", "DescribeEvents"): "cloudformation:DescribeEvents",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "PutObject"): "s3:PutObject",
    ("sts", "GetCallerIdentity"): None,
    # The review's forecast (backup_cfn/deploy/review/lookups.py, pruning.py): read calls only.
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "GetObject"): "s3:GetObject",
    ("iam", "GetRole"): "iam:GetRole",
    ("lambda", "GetFunction"): "lambda:GetFunction",
    ("lambda", "GetAccountSettings"): "lambda:GetAccountSettings",
    ("logs", "DescribeLogGroups"): "logs:DescribeLogGroups",
    ("kms", "DescribeKey"): "kms:DescribeKey",
    ("cloudtrail", "GetTrail"): "cloudtrail:GetTrail",
    ("cloudwatch", "GetDashboard"): "cloudwatch:GetDashboard",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    # An existing source bucket's EventBridge notifications (deploy/source_events.py).
    ("s3", "PutBucketNotificationConfiguration"): "s3:PutBucketNotification",
    # `status`: continuous protection's RPO (the capture queue's counts, its age metric).
    ("sqs", "GetQueueAttributes"): "sqs:GetQueueAttributes",
    ("cloudwatch", "GetMetricData"): "cloudwatch:GetMetricData",
    # The subnets' zones (backup_cfn/deploy/zones.py), only for templates with a VPC.
    ("ec2", "DescribeAvailabilityZones"): "ec2:DescribeAvailabilityZones",
    ("ec2", "DescribeVpcEndpointServices"): "ec2:DescribeVpcEndpointServices",
}
ZONE_CHOICE_ACTIONS = frozenset({"ec2:DescribeAvailabilityZones", "ec2:DescribeVpcEndpointServices"})
# The forecast reads these with the deployer's credentials; scoped like the resources they read.
REVIEW_ACTIONS = ("cloudtrail:GetTrail", "cloudwatch:GetDashboard", "iam:GetRole", "kms:DescribeKey",
                  "lambda:GetFunction", "s3:GetObject", "s3:ListBucket", "s3:ListBucketVersions")
# Services the stacks' resources belong to; a schema's permissions for features these templates do
# not use (S3 Tables, Kinesis, Firehose, Organizations, VPC Lattice, EFS) are left out.
PROVISIONED_SERVICES = ("cloudtrail", "cloudwatch", "dynamodb", "ec2", "events", "iam", "kms", "lambda", "logs", "s3",
                        "sns", "sqs")
# Actions AWS authorises on no resource (Service Authorization Reference): "*" is the only scope.
UNSCOPED_PREFIXES = ("ec2:",)     # a VPC's parts have no ID before they are created
UNSCOPED = frozenset({"kms:CreateKey", "kms:ListAliases", "logs:DescribeLogGroups", "lambda:CreateEventSourceMapping",
                      "lambda:ListEventSourceMappings", "cloudtrail:DescribeTrails", "cloudwatch:DescribeAlarms",
                      "dynamodb:ListTables", "dynamodb:DescribeLimits", "sns:ListTopics", "sqs:ListQueues",
                      "events:ListRules", "lambda:ListFunctions", "lambda:GetAccountSettings", "iam:ListRoles",
                      "logs:DescribeMetricFilters", "cloudwatch:ListDashboards", "s3:ListAllMyBuckets",
                      "kms:ListKeys", "cloudformation:DescribeStackDriftDetectionStatus",
                      "cloudwatch:GetMetricData"})
PASSED_TO = ("lambda.amazonaws.com", "s3.amazonaws.com", "cloudtrail.amazonaws.com")


@dataclass(frozen=True)
class Scope:
    account: str
    regions: tuple[str, ...]
    prefixes: tuple[str, ...]       # the stacks' names: every resource name they generate starts so
    trail: str

    def arns(self, service: str) -> list[str]:
        a, out = self.account, []
        for region in self.regions:
            for p in self.prefixes:
                out += {
                    "s3": [f"arn:aws:s3:::{p}-*"],
                    "iam": [f"arn:aws:iam::{a}:role/{p}-*"],
                    "lambda": [f"arn:aws:lambda:{region}:{a}:function:{p}-*"],
                    "kms": [f"arn:aws:kms:{region}:{a}:alias/{p}*"],
                    "logs": [f"arn:aws:logs:{region}:{a}:log-group:/aws/lambda/{p}-*",
                             f"arn:aws:logs:{region}:{a}:log-group:/aws/cloudtrail/{p}-*"],
                    "sqs": [f"arn:aws:sqs:{region}:{a}:{p}-*"],
                    "sns": [f"arn:aws:sns:{region}:{a}:{p}-*"],
                    "dynamodb": [f"arn:aws:dynamodb:{region}:{a}:table/{p}-*"],
                    "events": [f"arn:aws:events:{region}:{a}:rule/{p}-*"],
                    "cloudwatch": [f"arn:aws:cloudwatch:{region}:{a}:alarm:{p}-*",
                                   f"arn:aws:cloudwatch::{a}:dashboard/{p}-*"],
                    "cloudtrail": [],
                }[service]
            out += {"kms": [f"arn:aws:kms:{region}:{a}:key/*"],
                    "lambda": [f"arn:aws:lambda:{region}:{a}:event-source-mapping:*"],
                    "cloudtrail": [f"arn:aws:cloudtrail:{region}:{a}:trail/{self.trail}"],
                    "s3": [f"arn:aws:s3:::{p}-*/*" for p in self.prefixes]}.get(service, [])
        return sorted(set(out))


def _scope(env: Environment, vault: bool = False) -> Scope:
    if vault:
        return Scope(env.vault.account_id, (env.vault.region,), (env.vault.stack_name, BOOTSTRAP_STACK), "")
    regions = (env.region,) if env.has_vault else (env.region, env.replica_region)
    return Scope(env.account_id or "*", tuple(dict.fromkeys(regions)), (env.stack_name, BOOTSTRAP_STACK),
                 f"{env.stack_name}-audit")


def stacks_of(env: Environment, vault: bool = False) -> list[tuple[str, str]]:
    """(stack, region) a deployer of this environment (or of its vault) works on."""
    if vault:
        return [(env.vault.stack_name, env.vault.region), (BOOTSTRAP_STACK, env.vault.region)]
    stacks = [(env.stack_name, env.region), (BOOTSTRAP_STACK, env.region)]
    if not env.has_vault:
        stacks += [(env.replica_stack_name, env.replica_region), (BOOTSTRAP_STACK, env.replica_region)]
    return stacks


def provisioning_actions(templates: list[dict], region: str) -> set[str]:
    """Every action CloudFormation's handlers use for the resource types in these templates."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    actions: set[str] = set()
    for rtype in sorted({r["Type"] for t in templates for r in t["Resources"].values()}):
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, rtype).schema.get("handlers", {})
        for handler in ("create", "read", "update", "delete"):
            for action in handlers.get(handler, {}).get("permissions", []):
                service, _, name = action.partition(":")
                if service.lower() in PROVISIONED_SERVICES:
                    actions.add(f"{service.lower()}:{name}")
    return actions


def deployer_policy(env: Environment, templates: list[dict], *, vault: bool = False) -> dict:
    """The policy document, as JSON-ready data: the platform team's (the primary, and the replica in
    the one-account layout) or, `vault`, the security team's (the vault stack, in its account)."""
    scope = _scope(env, vault)
    stacks = [f"arn:aws:cloudformation:{region}:{scope.account}:stack/{name}/*" for name, region in stacks_of(env, vault)]
    deploy_actions = sorted({a for a in DEPLOY_OPERATIONS.values()
                             if a and a.startswith("cloudformation:") and a not in UNSCOPED})
    artifacts = f"arn:aws:s3:::{BOOTSTRAP_STACK}-artifactsbucket-*"
    statements = [
        {"Sid": "DeployTheseStacks", "Effect": "Allow", "Action": deploy_actions, "Resource": sorted(set(stacks))},
        # ListBucket: without it a missing package answers 403 instead of 404, and is never uploaded.
        {"Sid": "ListArtifacts", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [artifacts]},
        {"Sid": "ReadAndWriteArtifacts", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": [f"{artifacts}/*"]},
        # The retention forecast reads the kept snapshots' manifests (never content), as the collector would.
        {"Sid": "DecryptManifestsThroughS3", "Effect": "Allow", "Action": ["kms:Decrypt"],
         "Resource": scope.arns("kms"), "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}},
        {"Sid": "PassOnlyTheStacksRoles", "Effect": "Allow", "Action": ["iam:PassRole"], "Resource": scope.arns("iam"),
         "Condition": {"StringEquals": {"iam:PassedToService": list(PASSED_TO)}}},
    ]
    actions = (provisioning_actions(templates, scope.regions[0]) - {"iam:PassRole"}) | set(REVIEW_ACTIONS) | (
        {a for a in DEPLOY_OPERATIONS.values() if a in UNSCOPED})
    if any(contract.PARAM_SUBNET_ZONE_IDS[0] in t.get("Parameters", {}) for t in templates):
        actions |= ZONE_CHOICE_ACTIONS
    unscoped = sorted(a for a in actions if a in UNSCOPED or a.startswith(UNSCOPED_PREFIXES))
    for service in PROVISIONED_SERVICES:
        scoped = sorted(a for a in actions if a.split(":")[0] == service and a not in unscoped)
        if scoped:
            statements.append({"Sid": f"Provision{service.capitalize()}", "Effect": "Allow", "Action": scoped,
                               "Resource": scope.arns(service)})
    if env.source_bucket:
        # A bucket the stacks do not own: only its notification configuration, read and written.
        statements.append({"Sid": "ExistingSourceBucketEvents", "Effect": "Allow",
                           "Action": ["s3:GetBucketNotification", "s3:PutBucketNotification"],
                           "Resource": [f"arn:aws:s3:::{env.source_bucket}"]})
    if unscoped:
        statements.append({"Sid": "ActionsWithoutResourceScope", "Effect": "Allow", "Action": unscoped, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


# IAM's limit on a customer managed policy, counted without whitespace.
MANAGED_POLICY_LIMIT = 6144


def size(document: dict) -> int:
    return len(json.dumps(document, separators=(",", ":")))


def as_managed_policies(policy: dict, limit: int = MANAGED_POLICY_LIMIT) -> list[dict]:
    """The statements packed, in order, into as few documents as fit IAM's managed-policy limit."""
    documents: list[dict] = []
    for statement in policy["Statement"]:
        if documents and size({**documents[-1], "Statement": documents[-1]["Statement"] + [statement]}) <= limit:
            documents[-1]["Statement"].append(statement)
        else:
            documents.append({"Version": policy["Version"], "Statement": [statement]})
    too_big = [d for d in documents if size(d) > limit]
    if too_big:
        raise ValueError(f"statement {too_big[0]['Statement'][0]['Sid']} alone is over {limit} characters")
    return documents


def call_resource(call, account: str, stack_of_change_set) -> str:
    """The resource a recorded deploy-side call is authorised on (for the test of this policy)."""
    p, region = call.params, call.region
    action = DEPLOY_OPERATIONS.get((call.service, call.operation))
    if f"{call.service}:{call.operation}" in UNSCOPED or action in UNSCOPED or action in ZONE_CHOICE_ACTIONS:
        return "*"
    if call.service == "s3":
        return f"arn:aws:s3:::{p['Bucket']}" + (f"/{p['Key']}" if "Key" in p else "")
    if call.service == "iam":
        return f"arn:aws:iam::{account}:role/{p['RoleName']}"
    if call.service == "lambda":
        return f"arn:aws:lambda:{region}:{account}:function:{p['FunctionName']}"
    if call.service == "kms":   # an alias is authorised on the key it names, unknown before it exists
        return f"arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000000"
    if call.service == "cloudtrail":
        return f"arn:aws:cloudtrail:{region}:{account}:trail/{p['Name']}"
    if call.service == "cloudwatch":
        return f"arn:aws:cloudwatch::{account}:dashboard/{p['DashboardName']}"
    if call.service == "sqs":   # https://sqs.<region>.amazonaws.com/<account>/<name>, or the emulator's
        return f"arn:aws:sqs:{region}:{account}:{p['QueueUrl'].rstrip('/').rsplit('/', 1)[-1]}"
    name = p.get("StackName") or ""
    if not name and p.get("ChangeSetName"):
        name = stack_of_change_set(region, p["ChangeSetName"])
    if name.startswith("arn:"):
        name = name.split(":stack/")[1].split("/")[0]
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}/0"
