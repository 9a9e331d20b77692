"""One environment's deployment as the evaluator sees it: both committed templates resolved with the
parameters a deployment gives them, every policy they hold in one PolicyStore, and a catalogue of
the resources calls name (bucket -> its ARN, region and default key; table, queue and topic -> ARN
and key), so a recorded call can be turned into the requests AWS authorises.

Physical names are the resolver's (`<stack>-<logical id>`, lower case, or the name the template
fixes); recorded calls name the emulator's resources, which `aliases` maps to logical IDs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from backup_cfn import contract
from backup_cfn.config import Environment
from backup_cfn.permissions.iam import PolicyStore, Principal, ResourceKind, parse_policy
from backup_cfn.permissions.iam.cfn import Pseudo, Resolver, build_policy_store, extract_policies
from backup_cfn.stack.render import template_paths

ACCOUNT = "111122223333"
ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES_DIR = ROOT / "templates"
PRIMARY, REPLICA = "primary", "replica"
# What a recording's aliases call the environment's two stacks (their names differ per environment).
PRIMARY_STACK, REPLICA_STACK = "PrimaryStack", "ReplicaStack"
# A client of the source bucket: its IAM policy allows what uploading reports takes, so only the
# bucket and key policies decide (the identity demo-data and a report portal use).
SOURCE_CLIENT = "SourceBucketClient"

# Stack outputs the engine and the operator commands are configured from -> the resource they name.
OUTPUT_RESOURCES = {
    contract.OUTPUT_SOURCE_BUCKET: (PRIMARY, "SourceBucket"),
    contract.OUTPUT_BACKUP_BUCKET: (PRIMARY, "BackupBucket"),
    contract.OUTPUT_RUNS_TABLE: (PRIMARY, "RunsTable"),
    contract.OUTPUT_CONTENT_TABLE: (PRIMARY, "ContentIndexTable"),
    contract.OUTPUT_JOB_QUEUE_URL: (PRIMARY, "JobQueue"),
    contract.OUTPUT_DEAD_LETTER_QUEUE_URL: (PRIMARY, "JobDeadLetterQueue"),
    contract.OUTPUT_CAPTURE_QUEUE_URL: (PRIMARY, "CaptureQueue"),
    contract.OUTPUT_CAPTURE_DEAD_LETTER_QUEUE_URL: (PRIMARY, "CaptureDeadLetterQueue"),
    contract.OUTPUT_TOPIC_ARN: (PRIMARY, "NotificationTopic"),
    contract.OUTPUT_KEY_ARN: (PRIMARY, "BackupKey"),
    contract.OUTPUT_INITIATOR: (PRIMARY, "InitiatorFunction"),
    contract.OUTPUT_RESTORE_QUEUE_URL: (PRIMARY, "RestoreQueue"),
    contract.OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL: (PRIMARY, "RestoreDeadLetterQueue"),
    contract.OUTPUT_REPLICA_BUCKET: (REPLICA, "ReplicaBucket"),
    contract.OUTPUT_REPLICA_KEY_ARN: (REPLICA, "ReplicaKey"),
    contract.OUTPUT_VAULT_BUCKET: (REPLICA, "VaultBucket"),
    contract.OUTPUT_VAULT_KEY_ARN: (REPLICA, "VaultKey"),
    contract.OUTPUT_VAULT_LOCK_TABLE: (REPLICA, "VaultLockTable"),
}


def account_of(env: Environment) -> str:
    """The production account as the model names it: the environment's own, else an example."""
    return env.account_id or ACCOUNT


@dataclass(frozen=True)
class Stored:
    """A resource calls can name: its ARN, region, name (Ref) and the key that encrypts it."""
    logical_id: str
    stack: str             # PRIMARY or REPLICA
    arn: str
    region: str
    name: str
    key_arn: str | None = None


@dataclass
class DeploymentModel:
    env: Environment
    templates: dict[str, dict]
    resolvers: dict[str, Resolver]
    store: PolicyStore
    resources: dict[str, Stored] = field(default_factory=dict)      # logical ID -> resource
    by_name: dict[str, Stored] = field(default_factory=dict)        # physical name, URL or ARN -> resource

    @property
    def account(self) -> str:
        return account_of(self.env)

    @property
    def dr_account(self) -> str:
        """The disaster-recovery copy's account: the vault's, or (one-account layout) this one."""
        return self.env.vault.account_id if self.env.has_vault else self.account

    def find(self, name: str, aliases: dict[str, str] | None = None) -> Stored | None:
        """The resource a recorded call names: through the recording's aliases (emulator name ->
        logical ID), else by the name the templates give it."""
        logical = (aliases or {}).get(name)
        if logical is not None:
            return self.resources[logical]
        return self.by_name.get(name)

    def principal(self, name: str) -> Principal:
        return self.store.principal(name)

    def stack_arn(self, stack: str) -> str:
        if stack == self.env.dr_stack_name:
            region, account = self.env.replica_region, self.dr_account
        else:
            region, account = self.env.region, self.account
        return f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/00000000-0000-0000-0000-000000000000"


def committed_templates(env: Environment, directory: Path = TEMPLATES_DIR) -> dict[str, dict]:
    """The primary's and the disaster-recovery stack's (the vault's, or the replica's) templates."""
    primary, disaster_recovery = template_paths(env, directory)
    return {PRIMARY: json.loads(primary.read_text()), REPLICA: json.loads(disaster_recovery.read_text())}


def build_model(env: Environment, templates: dict[str, dict] | None = None) -> DeploymentModel:
    """Resolve both templates as one deployment (the disaster-recovery stack's outputs feed the
    primary's parameters) and gather every policy into one store: with a vault, its roles, bucket
    and key policies belong to the vault's account, so a production principal's request to it is
    evaluated as a cross-account one."""
    templates = templates or committed_templates(env)
    code = {contract.PARAM_CODE_BUCKET: "backup-cfn-bootstrap-artifactsbucket",
            contract.PARAM_CODE_KEY: "handlers/0123456789abcdef.zip"}
    account = account_of(env)
    if env.has_vault:
        disaster_recovery = Resolver(templates[REPLICA], pseudo=Pseudo(
            account_id=env.vault.account_id, region=env.vault.region, stack_name=env.vault.stack_name),
            parameters=code)
        bucket_arn, key_arn = (disaster_recovery.get_att("VaultBucket", "Arn"),
                               disaster_recovery.get_att("VaultKey", "Arn"))
    else:
        disaster_recovery = Resolver(templates[REPLICA], pseudo=Pseudo(account_id=account, region=env.replica_region,
                                                                       stack_name=env.replica_stack_name))
        bucket_arn, key_arn = (disaster_recovery.get_att("ReplicaBucket", "Arn"),
                               disaster_recovery.get_att("ReplicaKey", "Arn"))
    parameters = {**code, contract.PARAM_REPLICA_BUCKET_ARN: bucket_arn, contract.PARAM_REPLICA_KEY_ARN: key_arn}
    primary = Resolver(templates[PRIMARY], pseudo=Pseudo(account_id=account, region=env.region,
                                                         stack_name=env.stack_name), parameters=parameters)
    store = build_policy_store(primary)
    extraction = extract_policies(disaster_recovery)
    dr_account = disaster_recovery.pseudo.account_id
    for logical_id, arn in extraction.roles.items():
        store.add_principal(logical_id, Principal.assumed_role(arn, "session", name=logical_id))
    for item in extraction.policies:
        policy = parse_policy(item.document, item.name)
        if item.kind == "identity":
            for role in item.attached_to:
                store.add_identity_policy(extraction.roles[role], policy)
        elif item.kind != "trust" or env.has_vault:
            store.add_resource_policy(policy, item.resources, account=dr_account, kind=_RESOURCE_KINDS.get(
                item.kind, ResourceKind.GENERIC))
    model = DeploymentModel(env, templates, {PRIMARY: primary, REPLICA: disaster_recovery}, store)
    for stack, resolver in model.resolvers.items():
        _catalogue(model, stack, resolver)
    _add_source_client(model)
    return model


_RESOURCE_KINDS = {"key": ResourceKind.KMS_KEY, "trust": ResourceKind.ROLE_TRUST}

_KEY_PROPERTY = {
    "AWS::S3::Bucket": lambda p: p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    ["ServerSideEncryptionByDefault"].get("KMSMasterKeyID"),
    "AWS::DynamoDB::Table": lambda p: p.get("SSESpecification", {}).get("KMSMasterKeyId"),
    "AWS::SQS::Queue": lambda p: p.get("KmsMasterKeyId"),
    "AWS::SNS::Topic": lambda p: p.get("KmsMasterKeyId"),
}


def _catalogue(model: DeploymentModel, stack: str, resolver: Resolver) -> None:
    region = resolver.pseudo.region
    for logical_id, resource in resolver.resources.items():
        rtype = resource["Type"]
        if rtype not in (*_KEY_PROPERTY, "AWS::KMS::Key", "AWS::Lambda::Function", "AWS::IAM::Role"):
            continue
        attributes = resolver.attributes(logical_id)
        key = None
        if rtype in _KEY_PROPERTY:
            props = resolver.resolve(resource.get("Properties", {}), f"Resources.{logical_id}.Properties")
            key = _KEY_PROPERTY[rtype](props)
        arn = attributes.get("Arn") or attributes["Ref"]
        stored = Stored(logical_id, stack, arn, region, attributes["Ref"], key)
        model.resources[logical_id] = stored
        for name in {attributes["Ref"], arn}:
            model.by_name[name] = stored


def _add_source_client(model: DeploymentModel) -> None:
    """A principal whose own policy allows uploading to and reading the source bucket, and the key
    through S3, so the bucket and key policies alone decide."""
    source = model.resources.get("SourceBucket")
    if source is None:
        return
    role = f"arn:aws:iam::{model.account}:role/{SOURCE_CLIENT}"
    model.store.add_principal(SOURCE_CLIENT, Principal.assumed_role(role, "client", name=SOURCE_CLIENT))
    model.store.add_identity_policy(role, parse_policy({"Version": "2012-10-17", "Statement": [
        {"Sid": "UploadReports", "Effect": "Allow", "Resource": [source.arn, f"{source.arn}/*"],
         "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject",
                    "s3:AbortMultipartUpload"]},
        {"Sid": "EncryptThroughS3", "Effect": "Allow", "Resource": source.key_arn,
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{source.region}.amazonaws.com"}}},
    ]}, SOURCE_CLIENT))
