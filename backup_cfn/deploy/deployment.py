"""`deploy` and `diff` of one environment: validate, package, then the replica stack and the
primary stack (whose parameters are the replica's outputs and the package's location), each
through a reviewed change set.

The logic takes its boto3 clients as arguments (SAM's Deployer pattern), so tests hand it clients
pointed at the local emulator, or stubbed with AWS's real responses where moto cannot act.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console

from backup_cfn import aws, contract
from backup_cfn.config import Environment
from backup_cfn.deploy import artifacts, handler_package, source_events, stack_events, zones
from backup_cfn.deploy.clients import DeployClients, Readers
from backup_cfn.deploy.stack_deployer import TAG_COMMIT, TAG_PACKAGE, TAG_TEMPLATE, StackDeployer
from backup_cfn.deploy.stack_spec import Options, StackResult, StackSpec
from backup_cfn.deploy.stack_events import Poll
from backup_cfn.errors import UserError
from backup_cfn.stack.render import TEMPLATE_URL_LIMIT, render_environment

ROOT = Path(__file__).resolve().parent.parent.parent


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


def git_commit(root: Path = ROOT) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=root, capture_output=True).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def _parameters(spec_rendered: str, values: dict[str, str], name: str) -> dict[str, str]:
    declared = json.loads(spec_rendered).get("Parameters", {})
    missing = [p for p in declared if p not in values]
    if missing:
        raise UserError(f"the template of {name} declares parameters this tool does not set: {', '.join(missing)}")
    return {k: values[k] for k in declared}


def _first_create(rendered: str) -> dict[str, str]:
    """Deletion protection off while the stack is first created: with it on, a creation that fails
    cannot delete its tables, the rollback ends ROLLBACK_FAILED, and `--recreate-failed` cannot go on."""
    declared = json.loads(rendered).get("Parameters", {})
    return {contract.PARAM_TABLE_DELETION_PROTECTION: "false"} if contract.PARAM_TABLE_DELETION_PROTECTION in declared \
        else {}


@dataclass
class Deployment:
    """deploy (or diff) of one environment: validate, package, replica stack, primary stack."""

    env: Environment
    clients: DeployClients
    console: Console
    poll: Poll | None = None                         # default: the seam's interval for env
    templates: tuple[str, str] | None = None        # (primary, replica) as rendered; default: built now
    build_package: Callable | None = None
    validate: bool = True
    commit: str | None = None
    # How the review's forecast gets a read-only client for (service, region); tests record them.
    make_reader: Callable[[str, str], object] | None = None
    # What each stack came to so far (a refusal midway still leaves the earlier stacks' results).
    results: dict[str, StackResult] = field(default_factory=dict)
    _buckets: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.poll = self.poll or Poll(aws.poll_seconds(self.env))

    def run(self, options: Options, *, diff_only: bool = False) -> dict[str, StackResult]:
        primary_rendered, replica_rendered = self.templates or render_environment(self.env)
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
        package = (self.build_package or handler_package.build_package)()
        check_account(self.env, self.clients.sts)
        self.console.print(f"handler package {package.sha256[:12]} ({len(package.data):,} bytes, "
                           f"{len(package.files)} files)")

        results = self.results
        results.clear()
        replica_deployer = self._deployer(self.clients.replica_cloudformation, self.clients.replica_s3)
        results["replica"] = replica_deployer.deploy(replica, options, diff_only=diff_only)
        replica_outputs = results["replica"].outputs
        if contract.OUTPUT_REPLICA_BUCKET_ARN not in replica_outputs:
            self.console.print(f"the primary stack's change set needs the replica stack's outputs: it is computed "
                               f"once {replica.name} exists")
            return results

        code_bucket = self._bucket(self.clients.cloudformation)
        if not diff_only:  # --no-execute too: the change set may be executed from the console
            uploaded = handler_package.upload_package(self.clients.s3, code_bucket, package)
            self.console.print(f"package {'uploaded to' if uploaded else 'already in'} s3://{code_bucket}/{package.key}",
                               soft_wrap=True)
        values = {
            contract.PARAM_CODE_BUCKET: code_bucket,
            contract.PARAM_CODE_KEY: package.key,
            contract.PARAM_REPLICA_BUCKET_ARN: replica_outputs[contract.OUTPUT_REPLICA_BUCKET_ARN],
            contract.PARAM_REPLICA_KEY_ARN: replica_outputs[contract.OUTPUT_REPLICA_KEY_ARN],
            contract.PARAM_TABLE_DELETION_PROTECTION: "true",
            **self._subnet_zones(primary_rendered),
        }
        primary = StackSpec("primary", self.env.stack_name, self.env.region, primary_rendered,
                            _parameters(primary_rendered, values, self.env.stack_name),
                            {**tags, TAG_TEMPLATE: hashlib.sha256(primary_rendered.encode()).hexdigest(),
                             TAG_PACKAGE: package.sha256},
                            self.env.termination_protection,
                            first_create=_first_create(primary_rendered))
        if options.no_execute and results["replica"].outcome == "planned":
            self.console.print("the primary change set is computed with the replica's current outputs")
        primary_deployer = self._deployer(self.clients.cloudformation, self.clients.s3)
        results["primary"] = primary_deployer.deploy(primary, options, diff_only=diff_only)
        if self.env.source_bucket and results["primary"].outcome in ("executed", "no changes"):
            # A bucket the stack does not own: its events go to EventBridge for the capture rule.
            self.console.print(source_events.enable_eventbridge(self.clients.s3, self.env.source_bucket).line(),
                               highlight=False)
        self._note_unused_allowances(options, results)
        return results

    def _subnet_zones(self, rendered: str) -> dict[str, str]:
        """With a VPC: zones hosting every endpoint service and Lambda, the deployed ones kept (zones.py)."""
        if not zones.declared(rendered):
            return {}
        stack = stack_events.describe_stack(self.clients.cloudformation, self.env.stack_name)
        deployed = {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])}
        current = tuple(deployed[name] for name in contract.PARAM_SUBNET_ZONE_IDS if name in deployed)
        choice = zones.choose_zones(self._reader("ec2", self.env.region), self.env.region,
                                    zones.endpoint_services(rendered, self.env.region), current)
        self.console.print(choice.line())
        return choice.parameters()

    def _note_unused_allowances(self, options: Options, results: dict[str, StackResult]) -> None:
        """An --allow-replace or --accept that matched nothing is most likely misspelt."""
        guarded = {c.logical_id for r in results.values() if r.change_set for c in r.change_set.changes
                   if c.destroys_data}
        for logical_id in sorted(options.allow_replace - guarded):
            self.console.print(f"[yellow]note:[/yellow] --allow-replace {logical_id} matched no replacement or "
                               "removal of a stateful resource")
        found = {f.id for r in results.values() if r.review for f in r.review.findings}
        for finding_id in sorted(options.accept - found):
            self.console.print(f"[yellow]note:[/yellow] --accept {finding_id} matched no finding of the forecast "
                               "(IDs are KIND:LogicalId, as the forecast prints them)", highlight=False)

    def _validate(self) -> None:
        from backup_cfn.deploy.validate import validate_environments

        report = validate_environments([self.env])
        if not report.ok:
            for line in report.lines():
                self.console.print(line)
            raise UserError(f"validation failed with {report.blocking_count} error(s)/warning(s): nothing deployed")
        self.console.print(report.lines()[-1])  # the cfn-lint summary

    def _deployer(self, cloudformation, s3) -> StackDeployer:
        region = cloudformation.meta.region_name
        return StackDeployer(cloudformation, s3, console=self.console, poll=self.poll,
                             artifacts_bucket=lambda: self._bucket(cloudformation),
                             readers=Readers(lambda service: self._reader(service, region)))

    def _reader(self, service: str, region: str):
        if self.make_reader is not None:
            return self.make_reader(service, region)
        return aws.client(self.env, service, region)

    def _bucket(self, cloudformation) -> str:
        region = cloudformation.meta.region_name
        if region not in self._buckets:
            self._buckets[region] = artifacts.artifacts_bucket(cloudformation, poll=self.poll, console=self.console,
                                                               tags=self.env.tag_dict)
        return self._buckets[region]


