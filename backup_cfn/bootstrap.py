"""The artifacts bucket: handler packages and large templates, one per account and region, created
on first use by a small bootstrap stack (as CDK's bootstrap does)."""
from __future__ import annotations

import json

from rich.console import Console
from troposphere import Output, Ref, Template, s3

from backup_cfn import display, events
from backup_cfn.errors import UserError
from backup_cfn.events import Poll
from backup_cfn.stack import outputs as stack_outputs

STACK_NAME = "backup-cfn-bootstrap"
VERSION = 1
OUTPUT_BUCKET = "ArtifactsBucketName"
OUTPUT_VERSION = "BootstrapVersion"
TEMPLATE_PREFIX = "templates/"
# A package must outlive the stack update that uses it (a rollback re-reads it); templates are read
# once, when the change set is created.
PACKAGE_EXPIRY_DAYS = 365
TEMPLATE_EXPIRY_DAYS = 30


def bootstrap_template() -> Template:
    t = Template(Description="backup-cfn bootstrap: artifacts bucket for handler packages and large templates")
    bucket = t.add_resource(s3.Bucket(
        "ArtifactsBucket",
        DeletionPolicy="Retain", UpdateReplacePolicy="Retain",
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
        OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[
            s3.LifecycleRule(Id="ExpireOldPackages", Status="Enabled", Prefix="handlers/",
                             ExpirationInDays=PACKAGE_EXPIRY_DAYS),
            s3.LifecycleRule(Id="ExpireOldTemplates", Status="Enabled", Prefix=TEMPLATE_PREFIX,
                             ExpirationInDays=TEMPLATE_EXPIRY_DAYS),
            s3.LifecycleRule(Id="AbortIncompleteUploads", Status="Enabled",
                             AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=1)),
        ]),
    ))
    t.add_resource(s3.BucketPolicy(
        "ArtifactsBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument={"Version": "2012-10-17", "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [{"Fn::GetAtt": [bucket.title, "Arn"]}, {"Fn::Sub": "${ArtifactsBucket.Arn}/*"}],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
    ))
    t.add_output(Output(OUTPUT_BUCKET, Value=Ref(bucket)))
    t.add_output(Output(OUTPUT_VERSION, Value=str(VERSION)))
    return t


def artifacts_bucket(cloudformation, *, poll: Poll, console: Console, tags: dict[str, str] | None = None) -> str:
    """The bucket's name, creating or upgrading the bootstrap stack when needed."""
    stack = events.describe_stack(cloudformation, STACK_NAME)
    if stack and events.is_busy(stack["StackStatus"]):
        stack, _ = events.follow(cloudformation, stack["StackId"], None, poll, lambda e: None)
    if stack and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        # It never held anything: a failed first bootstrap is simply retried.
        cloudformation.delete_stack(StackName=stack["StackId"])
        events.follow(cloudformation, stack["StackId"], None, poll, lambda e: None)
        stack = None
    outputs = stack_outputs(stack or {})
    if stack and stack["StackStatus"] in events.SUCCEEDED | {"UPDATE_ROLLBACK_COMPLETE"} \
            and int(outputs.get(OUTPUT_VERSION, 0)) >= VERSION and OUTPUT_BUCKET in outputs:
        return outputs[OUTPUT_BUCKET]
    body = json.dumps(bootstrap_template().to_dict(), sort_keys=True, separators=(",", ":"))
    tag_list = [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())]
    region = cloudformation.meta.region_name
    if stack is None:
        console.print(f"bootstrapping the artifacts bucket in {region} (stack {STACK_NAME})")
        stack_id = cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=body, Tags=tag_list)["StackId"]
        last_seen = None
    else:
        console.print(f"upgrading the bootstrap stack {STACK_NAME} in {region} to version {VERSION}")
        stack_id = stack["StackId"]
        last_seen = events.latest_event_id(cloudformation, stack_id)
        cloudformation.update_stack(StackName=stack_id, TemplateBody=body, Tags=tag_list)
    final, seen = events.follow(cloudformation, stack_id, last_seen, poll, lambda e: None)
    if final["StackStatus"] not in events.SUCCEEDED:
        causes = events.root_causes(seen, STACK_NAME)
        raise UserError(f"bootstrap stack {STACK_NAME} in {region} ended {final['StackStatus']}: "
                        f"{display.cause_summary(causes)}")
    return stack_outputs(final)[OUTPUT_BUCKET]


def template_url(bucket: str, region: str, key: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
