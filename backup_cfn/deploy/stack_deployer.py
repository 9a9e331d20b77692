"""One stack in one region through a change set: prepare the stack (refusing or recovering the
states that cannot be updated), skip when nothing changed, create and wait for the change set,
hand it to the review, execute it with live events, and protect production stacks."""
from __future__ import annotations

import hashlib
import json
from typing import Callable

from rich.console import Console

from backup_cfn.deploy import artifacts, changeset, progress, review, stack_events
from backup_cfn.deploy.changeset import ChangeSet, TemplateSource
from backup_cfn.deploy.outputs import outputs
from backup_cfn.deploy.review.model import StackReview
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.deploy.stack_spec import Options, StackResult, StackSpec
from backup_cfn.errors import UserError
from backup_cfn.stack.bootstrap import TEMPLATE_PREFIX
from backup_cfn.stack.render import INLINE_TEMPLATE_LIMIT

TAG_COMMIT = "backup-cfn:git-commit"
TAG_TEMPLATE = "backup-cfn:template-sha256"
TAG_PACKAGE = "backup-cfn:package-sha256"


def stack_policy(stateful_ids: list[str], allowed: frozenset[str] = frozenset()) -> str:
    """Allow updates, but deny replacing or deleting stateful resources (except those allowed now)."""
    statements = [{"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}]
    denied = [logical_id for logical_id in stateful_ids if logical_id not in allowed]
    if denied:
        statements.append({"Effect": "Deny", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],
                           "Resource": [f"LogicalResourceId/{logical_id}" for logical_id in denied]})
    return json.dumps({"Statement": statements}, sort_keys=True)


class StackDeployer:
    """Deploys one stack in one region through a change set."""

    def __init__(self, cloudformation, s3, *, console: Console, poll: Poll, artifacts_bucket: Callable[[], str],
                 readers: Callable[[str], object] | None = None):
        self.cloudformation = cloudformation
        self.s3 = s3
        self.region = cloudformation.meta.region_name
        self.console = console
        self.poll = poll
        self.artifacts_bucket = artifacts_bucket
        # Read-only clients of this region, by service, for the forecast (None: offline checks only).
        self.readers = readers

    # -- the numbered steps --------------------------------------------------------------------

    def deploy(self, spec: StackSpec, options: Options, *, diff_only: bool = False) -> StackResult:
        stack = self._prepare(spec, stack_events.describe_stack(self.cloudformation, spec.name), options, diff_only)
        if stack and not diff_only and self._matches(spec, stack):
            self.console.print(f"[green]no changes[/green] to {spec.label} stack {spec.name} ({spec.region}): "
                               "template, parameters and tags match what is deployed", soft_wrap=True)
            if spec.production:
                self._protect(spec, stack=stack)
            return StackResult("no changes", outputs(stack))
        change_set_type = "CREATE" if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS" else "UPDATE"
        wanted = spec
        if change_set_type == "CREATE":
            spec = spec.for_creation()
        # diff leaves alone what it did not make: a change set kept for review, the stack waiting for it.
        remove_stack = change_set_type == "CREATE" and (stack is None or not diff_only)
        if stack is not None and not diff_only:
            for name in changeset.delete_stale(self.cloudformation, stack["StackId"]):
                self.console.print(f"deleted the earlier change set {name}, never executed")
        source = self._template_source(spec)
        change_set_id, _ = changeset.create(
            self.cloudformation, stack_name=spec.name, change_set_type=change_set_type, template=source,
            parameters=spec.parameters, tags=spec.tags,
            description=f"backup-cfn {spec.label} stack at {spec.tags.get(TAG_COMMIT, 'unknown')}")
        try:
            change_set = changeset.wait(self.cloudformation, change_set_id, change_set_type=change_set_type,
                                        region=self.region, poll=self.poll)
        except BaseException:
            review.discard(self.cloudformation, change_set_id, spec.name, remove_stack)
            raise
        if change_set.status == "FAILED":
            # CloudFormation's early validation says why, path by path, in the change set's events.
            failures = [] if change_set.empty or self.readers is None else \
                review.validation_failures(self.cloudformation, change_set.id)
            review.discard(self.cloudformation, change_set.id, spec.name, remove_stack)
            if change_set.empty:
                self.console.print(f"[green]no changes[/green] to {spec.label} stack {spec.name} ({spec.region})")
                return StackResult("no changes", outputs(stack or {}))
            raise UserError(f"CloudFormation could not create a change set for {spec.name}: {change_set.reason}"
                            + "".join(f"; {failure}" for failure in failures))
        try:
            reviewed = review.prepare(self.cloudformation, spec, change_set, stack, options, self.readers)
        except BaseException:
            review.discard(self.cloudformation, change_set.id, spec.name, remove_stack)
            raise
        review.show(self.console, reviewed)
        if reviewed.blocked or diff_only:
            review.discard(self.cloudformation, change_set.id, spec.name, remove_stack)
            if diff_only:
                return StackResult("blocked" if reviewed.blocked else "planned", outputs(stack or {}), change_set,
                                   reviewed)
            raise review.refusal(reviewed)
        if options.no_execute:
            # soft_wrap: the URL stays one line, so it can be copied whole.
            self.console.print(f"change set kept for review: {change_set.console_url}", soft_wrap=True)
            if spec is not wanted:
                self.console.print(f"it creates the stack with {_held_back(wanted, spec)}: the next deploy after its "
                                   f"execution applies {_held_back(wanted, wanted)}")
            return StackResult("planned", outputs(stack or {}), change_set, reviewed)
        review.confirm(self.cloudformation, spec, change_set, options, remove_stack)
        result = self._execute(spec, change_set, stack, options, reviewed)
        if spec is not wanted:
            self._apply_held_back(wanted)
        return result

    def _prepare(self, spec: StackSpec, stack: dict | None, options: Options, diff_only: bool) -> dict | None:
        if stack is None:
            return None
        status = stack["StackStatus"]
        where = f"{spec.name} ({spec.region})"
        if stack_events.is_busy(status):
            raise UserError(f"{where} is {status}: another operation is running on it; wait for it to finish")
        if status == "ROLLBACK_COMPLETE":
            causes = stack_events.root_causes(stack_events.all_events(self.cloudformation, stack["StackId"]), spec.name)
            self.console.print(f"[red]{where} is ROLLBACK_COMPLETE[/red]: its creation failed and CloudFormation "
                               "rolled it back; such a stack cannot be updated, only deleted and created again. "
                               "It failed because:")
            for line in progress.cause_lines(causes):
                self.console.print(line)
            if not options.recreate_failed or diff_only:
                raise UserError(f"{where} is ROLLBACK_COMPLETE ({progress.cause_summary(causes)}): fix the cause, then "
                                "rerun deploy with --recreate-failed to delete it and create it again")
            self.console.print(f"deleting {spec.name} to create it again (--recreate-failed)")
            last_seen = stack_events.latest_event_id(self.cloudformation, stack["StackId"])
            self.cloudformation.delete_stack(StackName=stack["StackId"])
            final, _ = stack_events.follow(self.cloudformation, stack["StackId"], last_seen, self.poll,
                                     lambda e: self.console.print(progress.event_line(e)))
            if final["StackStatus"] != "DELETE_COMPLETE":
                raise UserError(f"could not delete the failed stack {where}: it is {final['StackStatus']}")
            return None
        if status == "UPDATE_ROLLBACK_FAILED":
            raise UserError(f"{where} is UPDATE_ROLLBACK_FAILED: continue the rollback first with `aws cloudformation "
                            f"continue-update-rollback --stack-name {spec.name} --region {spec.region}`")
        if status in ("ROLLBACK_FAILED", "DELETE_FAILED"):
            raise UserError(f"{where} is {status}: delete it (retrying resources that block it; a DynamoDB table with "
                            f"deletion protection must have it turned off first), then deploy again")
        return stack

    def _matches(self, spec: StackSpec, stack: dict) -> bool:
        """True when the stack already holds this template, these parameters and these tags (the
        commit tag aside): a change set would be empty, so none is created."""
        if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"):
            return False
        deployed_tags = {t["Key"]: t["Value"] for t in stack.get("Tags", []) if t["Key"] != TAG_COMMIT}
        wanted_tags = {k: v for k, v in spec.tags.items() if k != TAG_COMMIT}
        deployed_parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        if deployed_tags != wanted_tags or deployed_parameters != spec.parameters:
            return False
        body = self.cloudformation.get_template(StackName=stack["StackId"], TemplateStage="Original")["TemplateBody"]
        return (json.loads(body) if isinstance(body, str) else body) == spec.document

    def _template_source(self, spec: StackSpec) -> TemplateSource:
        if len(spec.body.encode()) <= INLINE_TEMPLATE_LIMIT:
            return TemplateSource(body=spec.body)
        bucket = self.artifacts_bucket()
        key = f"{TEMPLATE_PREFIX}{hashlib.sha256(spec.body.encode()).hexdigest()}.json"
        self.s3.put_object(Bucket=bucket, Key=key, Body=spec.body.encode(), ContentType="application/json")
        return TemplateSource(url=artifacts.template_url(bucket, self.region, key))

    def _execute(self, spec: StackSpec, change_set: ChangeSet, stack: dict | None, options: Options,
                 reviewed: StackReview) -> StackResult:
        relaxed = spec.production and stack is not None and bool(options.allow_replace)
        if relaxed:
            self.cloudformation.set_stack_policy(
                StackName=spec.name, StackPolicyBody=stack_policy(spec.stateful_ids, options.allow_replace))
        try:
            last_seen = stack_events.latest_event_id(self.cloudformation, change_set.stack_id)
            self.cloudformation.execute_change_set(ChangeSetName=change_set.id)
            with progress.resource_progress(self.console, f"{spec.label} {spec.name}",
                                           len(change_set.changes)) as on_event:
                final, seen = stack_events.follow(self.cloudformation, change_set.stack_id, last_seen, self.poll, on_event)
        except KeyboardInterrupt:
            raise UserError(f"stopped watching, but CloudFormation goes on with {spec.name} ({spec.region}): follow "
                            f"it with `backup-cfn status` or in the console") from None
        finally:
            if relaxed:
                self.cloudformation.set_stack_policy(StackName=spec.name, StackPolicyBody=stack_policy(spec.stateful_ids))
        status = final["StackStatus"]
        if status not in stack_events.SUCCEEDED:
            causes = stack_events.root_causes(seen, spec.name)
            self.console.print(f"[red]{spec.name} ended {status}[/red]. Root cause:")
            for line in progress.cause_lines(causes):
                self.console.print(line)
            raise UserError(f"{spec.name} ({spec.region}) ended {status}: {progress.cause_summary(causes)}")
        self.console.print(f"[green]{spec.name} {status}[/green]")
        if spec.production:
            self._protect(spec, policy=not relaxed)  # a relaxed policy was restored above
        if final.get("Outputs"):
            self.console.print(progress.outputs_table(f"{spec.name} outputs", final["Outputs"]))
        return StackResult("executed", outputs(final), change_set, reviewed)

    def _apply_held_back(self, spec: StackSpec) -> None:
        """The stack exists: apply the values held back for its first creation, through a change set
        that may only modify resources in place (it turns the tables' deletion protection on),
        executed without a question, as termination protection is turned on. Anything else in it is
        not applied, and the next deploy shows it for review."""
        held = _held_back(spec, spec)
        self.console.print(f"{spec.name} exists: applying {held}")
        change_set_id, _ = changeset.create(
            self.cloudformation, stack_name=spec.name, change_set_type="UPDATE", template=self._template_source(spec),
            parameters=spec.parameters, tags=spec.tags, description=f"backup-cfn {spec.label} stack: {held}")
        change_set = changeset.wait(self.cloudformation, change_set_id, change_set_type="UPDATE", region=self.region,
                                    poll=self.poll)
        unexpected = [c for c in change_set.changes if c.action != "Modify" or c.replaces]
        if change_set.status == "FAILED" or unexpected:
            changeset.delete(self.cloudformation, change_set.id)
            if change_set.empty:
                return
            why = change_set.reason if change_set.status == "FAILED" else \
                f"its change set would also {unexpected[0].action.lower()} {unexpected[0].logical_id}"
            raise UserError(f"{spec.name} was created, but {held} was not applied ({why}): deploy again to review it")
        last_seen = stack_events.latest_event_id(self.cloudformation, change_set.stack_id)
        self.cloudformation.execute_change_set(ChangeSetName=change_set.id)
        final, seen = stack_events.follow(self.cloudformation, change_set.stack_id, last_seen, self.poll,
                                          lambda e: self.console.print(progress.event_line(e)))
        if final["StackStatus"] not in stack_events.SUCCEEDED:
            raise UserError(f"{spec.name} was created, but applying {held} ended {final['StackStatus']}: "
                            f"{progress.cause_summary(stack_events.root_causes(seen, spec.name))}; deploy again")
        self.console.print(f"[green]{spec.name}: {held} applied[/green]")

    def _protect(self, spec: StackSpec, policy: bool = True, stack: dict | None = None) -> None:
        """Production: termination protection, and a stack policy guarding the stateful resources."""
        if not (stack or {}).get("EnableTerminationProtection"):
            self.cloudformation.update_termination_protection(StackName=spec.name, EnableTerminationProtection=True)
        if policy:
            self.cloudformation.set_stack_policy(StackName=spec.name, StackPolicyBody=stack_policy(spec.stateful_ids))


def _held_back(wanted: StackSpec, used: StackSpec) -> str:
    """The held-back parameters as `used` sets them: "TableDeletionProtection=false"."""
    return ", ".join(f"{key}={used.parameters[key]}" for key in sorted(wanted.first_create))
