"""The artifacts bucket: handler packages and large templates, one per account and region, created
(or upgraded) on first use by the bootstrap stack that `backup_cfn.stack.bootstrap` builds."""
from __future__ import annotations

from rich.console import Console

from backup_cfn.deploy import progress, stack_events
from backup_cfn.deploy.outputs import outputs as stack_outputs
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.errors import UserError
from backup_cfn.stack.bootstrap import OUTPUT_BUCKET, OUTPUT_VERSION, STACK_NAME, VERSION
from backup_cfn.stack.render import render_bootstrap, wire_body


def artifacts_bucket(cloudformation, *, poll: Poll, console: Console, tags: dict[str, str] | None = None) -> str:
    """The bucket's name, creating or upgrading the bootstrap stack when needed."""
    stack = stack_events.describe_stack(cloudformation, STACK_NAME)
    if stack and stack_events.is_busy(stack["StackStatus"]):
        stack, _ = stack_events.follow(cloudformation, stack["StackId"], None, poll, lambda e: None)
    if stack and stack["StackStatus"] == "ROLLBACK_COMPLETE":
        # It never held anything: a failed first bootstrap is simply retried.
        cloudformation.delete_stack(StackName=stack["StackId"])
        stack_events.follow(cloudformation, stack["StackId"], None, poll, lambda e: None)
        stack = None
    outputs = stack_outputs(stack or {})
    if stack and stack["StackStatus"] in stack_events.SUCCEEDED | {"UPDATE_ROLLBACK_COMPLETE"} \
            and int(outputs.get(OUTPUT_VERSION, 0)) >= VERSION and OUTPUT_BUCKET in outputs:
        return outputs[OUTPUT_BUCKET]
    body = wire_body(render_bootstrap())
    tag_list = [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())]
    region = cloudformation.meta.region_name
    if stack is None:
        console.print(f"bootstrapping the artifacts bucket in {region} (stack {STACK_NAME})")
        stack_id = cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=body, Tags=tag_list)["StackId"]
        last_seen = None
    else:
        console.print(f"upgrading the bootstrap stack {STACK_NAME} in {region} to version {VERSION}")
        stack_id = stack["StackId"]
        last_seen = stack_events.latest_event_id(cloudformation, stack_id)
        cloudformation.update_stack(StackName=stack_id, TemplateBody=body, Tags=tag_list)
    final, seen = stack_events.follow(cloudformation, stack_id, last_seen, poll, lambda e: None)
    if final["StackStatus"] not in stack_events.SUCCEEDED:
        causes = stack_events.root_causes(seen, STACK_NAME)
        raise UserError(f"bootstrap stack {STACK_NAME} in {region} ended {final['StackStatus']}: "
                        f"{progress.cause_summary(causes)}")
    return stack_outputs(final)[OUTPUT_BUCKET]


def template_url(bucket: str, region: str, key: str) -> str:
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
