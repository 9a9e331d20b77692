"""`deploy` and `diff`: the replica stack, then the primary, each through a reviewed change set.

The logic takes its boto3 clients as arguments (SAM's Deployer pattern), so tests hand it clients
pointed at the local emulator, or stubbed with AWS's real responses where moto cannot act.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import click
from rich.console import Console

from backup_cfn import aws, bootstrap, changeset, display, events, layout
from backup_cfn.changeset import ChangeSet, TemplateSource
from backup_cfn.config import Environment
from backup_cfn.errors import UserError
from backup_cfn.events import Poll
from backup_cfn.stack import outputs
from backup_cfn.template import INLINE_TEMPLATE_LIMIT, TEMPLATE_URL_LIMIT, wire_body

TAG_COMMIT = "backup-cfn:git-commit"
TAG_TEMPLATE = "backup-cfn:template-sha256"
TAG_PACKAGE = "backup-cfn:package-sha256"
# CloudFormation's limits: a template body sent inline, and one read from S3.
ROOT = Path(__file__).resolve().parent.parent
# CloudFormation throttles DescribeStackEvents; a few seconds apart is polite and still feels live.
AWS_POLL_SECONDS = 3.0
LOCAL_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Clients:
    cloudformation: object
    replica_cloudformation: object
    s3: object
    replica_s3: object
    sts: object

    @classmethod
    def for_environment(cls, env: Environment) -> Clients:
        return cls(cloudformation=aws.client(env, "cloudformation"),
                   replica_cloudformation=aws.client(env, "cloudformation", env.replica_region),
                   s3=aws.client(env, "s3"), replica_s3=aws.client(env, "s3", env.replica_region),
                   sts=aws.client(env, "sts"))


@dataclass(frozen=True)
class Options:
    yes: bool = False
    no_execute: bool = False
    allow_replace: frozenset[str] = frozenset()
    recreate_failed: bool = False
    interactive: bool = False
    confirm: Callable[[str], bool] = field(default=lambda prompt: click.confirm(prompt, default=False))


@dataclass(frozen=True)
class StackSpec:
    """One stack as this checkout wants it."""

    label: str
    name: str
    region: str
    rendered: str                  # the template exactly as `make template` writes it
    parameters: dict[str, str]
    tags: dict[str, str]
    production: bool = False

    @cached_property
    def document(self) -> dict:
        return json.loads(self.rendered)

    @cached_property
    def body(self) -> str:
        return sent_body(self.rendered)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.rendered.encode()).hexdigest()

    @property
    def stateful_ids(self) -> list[str]:
        return sorted(logical_id for logical_id, resource in self.document.get("Resources", {}).items()
                      if resource.get("Type") in changeset.STATEFUL_TYPES)


@dataclass(frozen=True)
class StackResult:
    outcome: str                   # "no changes" | "executed" | "planned"
    outputs: dict[str, str]
    change_set: ChangeSet | None = None


def poll_for(env: Environment) -> Poll:
    return Poll(LOCAL_POLL_SECONDS if env.is_local else AWS_POLL_SECONDS)


sent_body = wire_body


def check_sizes(specs: list[StackSpec]) -> None:
    for spec in specs:
        size = len(spec.body.encode())
        if size > TEMPLATE_URL_LIMIT:
            raise UserError(f"the {spec.label} template ({spec.name}) is {size:,} bytes, over CloudFormation's limit "
                            f"of {TEMPLATE_URL_LIMIT:,} bytes: split the stack or trim the template")


def check_account(env: Environment, sts) -> str:
    account = sts.get_caller_identity()["Account"]
    if env.account_id and account != env.account_id:
        raise UserError(f"these credentials are for account {account}, but environment '{env.name}' deploys to "
                        f"{env.account_id}: switch profile (AWS_PROFILE) before deploying")
    return account


def stack_policy(stateful_ids: list[str], allowed: frozenset[str] = frozenset()) -> str:
    """Allow updates, but deny replacing or deleting stateful resources (except those allowed now)."""
    statements = [{"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}]
    denied = [logical_id for logical_id in stateful_ids if logical_id not in allowed]
    if denied:
        statements.append({"Effect": "Deny", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],
                           "Resource": [f"LogicalResourceId/{logical_id}" for logical_id in denied]})
    return json.dumps({"Statement": statements}, sort_keys=True)


def git_commit(root: Path = ROOT) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=root, capture_output=True).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


class StackDeployer:
    """Deploys one stack in one region through a change set."""

    def __init__(self, cloudformation, s3, *, console: Console, poll: Poll, artifacts_bucket: Callable[[], str]):
        self.cloudformation = cloudformation
        self.s3 = s3
        self.region = cloudformation.meta.region_name
        self.console = console
        self.poll = poll
        self.artifacts_bucket = artifacts_bucket

    # -- the numbered steps --------------------------------------------------------------------

    def deploy(self, spec: StackSpec, options: Options, *, diff_only: bool = False) -> StackResult:
        stack = self._prepare(spec, events.describe_stack(self.cloudformation, spec.name), options, diff_only)
        if stack and not diff_only and self._matches(spec, stack):
            self.console.print(f"[green]no changes[/green] to {spec.label} stack {spec.name} ({spec.region}): "
                               "template, parameters and tags match what is deployed", soft_wrap=True)
            if spec.production:
                self._protect(spec, stack=stack)
            return StackResult("no changes", outputs(stack))
        change_set_type = "CREATE" if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS" else "UPDATE"
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
            self._discard(change_set_id, spec.name, remove_stack)
            raise
        if change_set.status == "FAILED":
            self._discard(change_set.id, spec.name, remove_stack)
            if change_set.empty:
                self.console.print(f"[green]no changes[/green] to {spec.label} stack {spec.name} ({spec.region})")
                return StackResult("no changes", outputs(stack or {}))
            raise UserError(f"CloudFormation could not create a change set for {spec.name}: {change_set.reason}")
        self._show_parameter_changes(stack, spec)
        self._review(spec, change_set, options, remove_stack)
        if diff_only:
            self._discard(change_set.id, spec.name, remove_stack)
            return StackResult("planned", outputs(stack or {}), change_set)
        if options.no_execute:
            # soft_wrap: the URL stays one line, so it can be copied whole.
            self.console.print(f"change set kept for review: {change_set.console_url}", soft_wrap=True)
            return StackResult("planned", outputs(stack or {}), change_set)
        self._confirm(spec, change_set, options, remove_stack)
        return self._execute(spec, change_set, stack, options)

    def _show_parameter_changes(self, stack: dict | None, spec: StackSpec) -> None:
        if not stack or stack["StackStatus"] == "REVIEW_IN_PROGRESS":
            return
        deployed = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        for key, value in sorted(spec.parameters.items()):
            if deployed.get(key) != value:
                self.console.print(f"parameter {key}: {deployed.get(key, '(none)')} -> {value}", soft_wrap=True)

    def _review(self, spec: StackSpec, change_set: ChangeSet, options: Options, remove_stack: bool) -> None:
        """Show the change set; refuse (and delete it) when it would destroy unnamed stateful data."""
        violations = changeset.guard_violations(change_set.changes, options.allow_replace)
        self.console.print(display.change_set_table(change_set, {v.logical_id for v in violations}))
        self.console.print(f"{spec.name}: {display.summary_counts(change_set)}")
        if violations:
            self._discard(change_set.id, spec.name, remove_stack)
            named = " ".join(f"--allow-replace {v.logical_id}" for v in violations)
            raise UserError(
                f"refusing to replace or remove stateful resources in {spec.name}: "
                + ", ".join(f"{v.logical_id} ({v.resource_type}, {_how(v)})" for v in violations)
                + f"; the data would be lost or orphaned. If that is intended, rerun with {named}")

    def _confirm(self, spec: StackSpec, change_set: ChangeSet, options: Options, remove_stack: bool) -> None:
        """Ask, unless --yes; without a terminal refuse rather than hang. Declined: the change set goes."""
        if options.yes:
            return
        if not options.interactive:
            self._discard(change_set.id, spec.name, remove_stack)
            raise UserError("no terminal to confirm the change set on: rerun with --yes, or with --no-execute "
                            "to review it in the CloudFormation console (the change set was deleted)")
        try:
            accepted = options.confirm(f"Execute this change set on {spec.name} ({spec.region})?")
        except BaseException:  # Ctrl-C or end of input at the prompt: as good as declined
            self._discard(change_set.id, spec.name, remove_stack)
            raise
        if not accepted:
            self._discard(change_set.id, spec.name, remove_stack)
            raise UserError(f"declined: the change set for {spec.name} was deleted and nothing changed")

    def _prepare(self, spec: StackSpec, stack: dict | None, options: Options, diff_only: bool) -> dict | None:
        if stack is None:
            return None
        status = stack["StackStatus"]
        where = f"{spec.name} ({spec.region})"
        if events.is_busy(status):
            raise UserError(f"{where} is {status}: another operation is running on it; wait for it to finish")
        if status == "ROLLBACK_COMPLETE":
            causes = events.root_causes(events.all_events(self.cloudformation, stack["StackId"]), spec.name)
            self.console.print(f"[red]{where} is ROLLBACK_COMPLETE[/red]: its creation failed and CloudFormation "
                               "rolled it back; such a stack cannot be updated, only deleted and created again. "
                               "It failed because:")
            for line in display.cause_lines(causes):
                self.console.print(line)
            if not options.recreate_failed or diff_only:
                raise UserError(f"{where} is ROLLBACK_COMPLETE ({display.cause_summary(causes)}): fix the cause, then "
                                "rerun deploy with --recreate-failed to delete it and create it again")
            self.console.print(f"deleting {spec.name} to create it again (--recreate-failed)")
            last_seen = events.latest_event_id(self.cloudformation, stack["StackId"])
            self.cloudformation.delete_stack(StackName=stack["StackId"])
            final, _ = events.follow(self.cloudformation, stack["StackId"], last_seen, self.poll,
                                     lambda e: self.console.print(display.event_line(e)))
            if final["StackStatus"] != "DELETE_COMPLETE":
                raise UserError(f"could not delete the failed stack {where}: it is {final['StackStatus']}")
            return None
        if status == "UPDATE_ROLLBACK_FAILED":
            raise UserError(f"{where} is UPDATE_ROLLBACK_FAILED: continue the rollback first with `aws cloudformation "
                            f"continue-update-rollback --stack-name {spec.name} --region {spec.region}`")
        if status in ("ROLLBACK_FAILED", "DELETE_FAILED"):
            raise UserError(f"{where} is {status}: delete it (retrying resources that block it), then deploy again")
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
        key = f"{bootstrap.TEMPLATE_PREFIX}{hashlib.sha256(spec.body.encode()).hexdigest()}.json"
        self.s3.put_object(Bucket=bucket, Key=key, Body=spec.body.encode(), ContentType="application/json")
        return TemplateSource(url=bootstrap.template_url(bucket, self.region, key))

    def _discard(self, change_set_id: str, stack_name: str, remove_stack: bool) -> None:
        """Delete a change set nobody will execute, and (remove_stack) the empty stack that waited for it."""
        changeset.delete(self.cloudformation, change_set_id)
        if remove_stack:
            stack = events.describe_stack(self.cloudformation, stack_name)
            if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
                self.cloudformation.delete_stack(StackName=stack["StackId"])

    def _execute(self, spec: StackSpec, change_set: ChangeSet, stack: dict | None, options: Options) -> StackResult:
        relaxed = spec.production and stack is not None and bool(options.allow_replace)
        if relaxed:
            self.cloudformation.set_stack_policy(
                StackName=spec.name, StackPolicyBody=stack_policy(spec.stateful_ids, options.allow_replace))
        try:
            last_seen = events.latest_event_id(self.cloudformation, change_set.stack_id)
            self.cloudformation.execute_change_set(ChangeSetName=change_set.id)
            with display.resource_progress(self.console, f"{spec.label} {spec.name}",
                                           len(change_set.changes)) as on_event:
                final, seen = events.follow(self.cloudformation, change_set.stack_id, last_seen, self.poll, on_event)
        except KeyboardInterrupt:
            raise UserError(f"stopped watching, but CloudFormation goes on with {spec.name} ({spec.region}): follow "
                            f"it with `backup-cfn status` or in the console") from None
        finally:
            if relaxed:
                self.cloudformation.set_stack_policy(StackName=spec.name, StackPolicyBody=stack_policy(spec.stateful_ids))
        status = final["StackStatus"]
        if status not in events.SUCCEEDED:
            causes = events.root_causes(seen, spec.name)
            self.console.print(f"[red]{spec.name} ended {status}[/red]. Root cause:")
            for line in display.cause_lines(causes):
                self.console.print(line)
            raise UserError(f"{spec.name} ({spec.region}) ended {status}: {display.cause_summary(causes)}")
        self.console.print(f"[green]{spec.name} {status}[/green]")
        if spec.production:
            self._protect(spec, policy=not relaxed)  # a relaxed policy was restored above
        if final.get("Outputs"):
            self.console.print(display.outputs_table(f"{spec.name} outputs", final["Outputs"]))
        return StackResult("executed", outputs(final), change_set)

    def _protect(self, spec: StackSpec, policy: bool = True, stack: dict | None = None) -> None:
        """Production: termination protection, and a stack policy guarding the stateful resources."""
        if not (stack or {}).get("EnableTerminationProtection"):
            self.cloudformation.update_termination_protection(StackName=spec.name, EnableTerminationProtection=True)
        if policy:
            self.cloudformation.set_stack_policy(StackName=spec.name, StackPolicyBody=stack_policy(spec.stateful_ids))


def _how(change: changeset.Change) -> str:
    if change.action == "Remove":
        return "removed"
    if change.replaces:
        return f"replacement {change.replacement}"
    return f"policy action {change.policy_action}"


def _parameters(spec_rendered: str, values: dict[str, str], name: str) -> dict[str, str]:
    declared = json.loads(spec_rendered).get("Parameters", {})
    missing = [p for p in declared if p not in values]
    if missing:
        raise UserError(f"the template of {name} declares parameters this tool does not set: {', '.join(missing)}")
    return {k: values[k] for k in declared}


@dataclass
class Deployment:
    """deploy (or diff) of one environment: validate, package, replica stack, primary stack."""

    env: Environment
    clients: Clients
    console: Console
    poll: Poll | None = None                         # default: poll_for(env)
    templates: tuple[str, str] | None = None        # (primary, replica) as rendered; default: built now
    build_package: Callable | None = None
    validate: bool = True
    commit: str | None = None
    _buckets: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.poll = self.poll or poll_for(self.env)

    def run(self, options: Options, *, diff_only: bool = False) -> dict[str, StackResult]:
        from backup_cfn import package as packaging

        primary_rendered, replica_rendered = self.templates or _render(self.env)
        tags = {**self.env.tag_dict, TAG_COMMIT: self.commit or git_commit()}
        replica = StackSpec("replica", self.env.replica_stack_name, self.env.replica_region, replica_rendered,
                            _parameters(replica_rendered, {}, self.env.replica_stack_name),
                            {**tags, TAG_TEMPLATE: hashlib.sha256(replica_rendered.encode()).hexdigest()},
                            self.env.termination_protection)
        # Sizes first: an impossible template is reported before any call is made.
        primary_probe = StackSpec("primary", self.env.stack_name, self.env.region, primary_rendered, {}, {})
        check_sizes([replica, primary_probe])
        if self.validate and not diff_only:
            self._validate()
        package = (self.build_package or packaging.build_package)()
        check_account(self.env, self.clients.sts)
        self.console.print(f"handler package {package.sha256[:12]} ({len(package.data):,} bytes, "
                           f"{len(package.files)} files)")

        results: dict[str, StackResult] = {}
        replica_deployer = self._deployer(self.clients.replica_cloudformation, self.clients.replica_s3)
        results["replica"] = replica_deployer.deploy(replica, options, diff_only=diff_only)
        replica_outputs = results["replica"].outputs
        if layout.OUTPUT_REPLICA_BUCKET_ARN not in replica_outputs:
            self.console.print(f"the primary stack's change set needs the replica stack's outputs: it is computed "
                               f"once {replica.name} exists")
            return results

        code_bucket = self._bucket(self.clients.cloudformation)
        if not diff_only:  # --no-execute too: the change set may be executed from the console
            uploaded = packaging.upload_package(self.clients.s3, code_bucket, package)
            self.console.print(f"package {'uploaded to' if uploaded else 'already in'} s3://{code_bucket}/{package.key}",
                               soft_wrap=True)
        values = {
            layout.PARAM_CODE_BUCKET: code_bucket,
            layout.PARAM_CODE_KEY: package.key,
            layout.PARAM_REPLICA_BUCKET_ARN: replica_outputs[layout.OUTPUT_REPLICA_BUCKET_ARN],
            layout.PARAM_REPLICA_KEY_ARN: replica_outputs[layout.OUTPUT_REPLICA_KEY_ARN],
        }
        primary = StackSpec("primary", self.env.stack_name, self.env.region, primary_rendered,
                            _parameters(primary_rendered, values, self.env.stack_name),
                            {**tags, TAG_TEMPLATE: hashlib.sha256(primary_rendered.encode()).hexdigest(),
                             TAG_PACKAGE: package.sha256},
                            self.env.termination_protection)
        if options.no_execute and results["replica"].outcome == "planned":
            self.console.print("the primary change set is computed with the replica's current outputs")
        primary_deployer = self._deployer(self.clients.cloudformation, self.clients.s3)
        results["primary"] = primary_deployer.deploy(primary, options, diff_only=diff_only)
        self._note_unused_allowances(options, results)
        return results

    def _note_unused_allowances(self, options: Options, results: dict[str, StackResult]) -> None:
        """An --allow-replace that matched nothing is most likely a misspelt logical ID."""
        guarded = {c.logical_id for r in results.values() if r.change_set for c in r.change_set.changes
                   if c.destroys_data}
        for logical_id in sorted(options.allow_replace - guarded):
            self.console.print(f"[yellow]note:[/yellow] --allow-replace {logical_id} matched no replacement or "
                               "removal of a stateful resource")

    def _validate(self) -> None:
        from backup_cfn.validate import validate_environments

        report = validate_environments([self.env])
        if not report.ok:
            for line in report.lines():
                self.console.print(line)
            raise UserError(f"validation failed with {report.blocking_count} error(s)/warning(s): nothing deployed")
        self.console.print(report.lines()[-1])  # the cfn-lint summary

    def _deployer(self, cloudformation, s3) -> StackDeployer:
        return StackDeployer(cloudformation, s3, console=self.console, poll=self.poll,
                             artifacts_bucket=lambda: self._bucket(cloudformation))

    def _bucket(self, cloudformation) -> str:
        region = cloudformation.meta.region_name
        if region not in self._buckets:
            self._buckets[region] = bootstrap.artifacts_bucket(cloudformation, poll=self.poll, console=self.console,
                                                               tags=self.env.tag_dict)
        return self._buckets[region]


def _render(env: Environment) -> tuple[str, str]:
    from backup_cfn.template import render_environment

    return render_environment(env)
