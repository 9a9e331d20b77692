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

from botocore.exceptions import BotoCoreError, ClientError
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


def check_account(env: Environment, sts, *, vault: bool = False) -> str:
    """The credentials' account must be the one the stack belongs to: the production account, or
    (`vault`) the vault account; either refuses the other's credentials."""
    account = sts.get_caller_identity()["Account"]
    expected = env.vault.account_id if vault else env.account_id
    if expected and account != expected:
        what = "the vault of environment" if vault else "environment"
        how = ("use the vault account's credentials (vault.profile or vault.role_arn)" if vault
               else "switch profile (AWS_PROFILE) before deploying")
        raise UserError(f"these credentials are for account {account}, but {what} '{env.name}' deploys to "
                        f"{expected}: {how}")
    return account


def vault_key_arn(env: Environment, read_outputs: Callable[[], dict | None]) -> str:
    """The vault key's ARN for the primary's replication rule: from the vault stack's outputs when
    these credentials can read them (the emulator, or an operator holding both), else from the
    environments file (the security team hands VaultKeyArn over)."""
    try:
        found = (read_outputs() or {}).get(contract.OUTPUT_VAULT_KEY_ARN)
    except (BotoCoreError, ClientError):       # no vault credentials here: the platform team's case
        found = None
    if found:
        return found
    if env.vault.key_arn:
        return env.vault.key_arn
    raise UserError(f"the vault's key ARN is not known: deploy the vault first (`backup-cfn deploy --env {env.name} "
                    f"--vault`, with the vault account's credentials) and set vault.key_arn in the environments file "
                    f"to its VaultKeyArn output")


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
    _vault: bool = False                             # running the vault stack: its readers are the vault's

    # How the primary reads the vault stack's outputs (None: with the vault's credentials, if any).
    read_vault_outputs: Callable[[], dict | None] | None = None

    def __post_init__(self) -> None:
        self.poll = self.poll or Poll(aws.poll_seconds(self.env))

    def run(self, options: Options, *, diff_only: bool = False, vault: bool = False) -> dict[str, StackResult]:
        """The primary (and, in the one-account layout, the replica first); or (`vault`) the vault
        stack alone, with the vault account's clients."""
        self._vault = vault
        if vault:
            return self._run_vault(options, diff_only)
        primary_rendered, replica_rendered = self.templates or render_environment(self.env)
        tags = {**self.env.tag_dict, TAG_COMMIT: self.commit or git_commit()}
        if self.env.has_vault:
            return self._run_primary(options, diff_only, primary_rendered, tags, {
                contract.PARAM_REPLICA_BUCKET_ARN: f"arn:aws:s3:::{self.env.vault.bucket_name}",
                contract.PARAM_REPLICA_KEY_ARN: vault_key_arn(self.env, self.read_vault_outputs or self._vault_outputs),
            })
        replica = StackSpec("replica", self.env.replica_stack_name, self.env.replica_region, replica_rendered,
                            _parameters(replica_rendered, {}, self.env.replica_stack_name),
                            {**tags, TAG_TEMPLATE: hashlib.sha256(replica_rendered.encode()).hexdigest()},
                            self.env.termination_protection)
        # Sizes first: an impossible template is reported before any call is made.
        primary_probe = StackSpec("primary", self.env.stack_name, self.env.region, primary_rendered, {}, {})
        package = self._prepare_package(diff_only, [replica, primary_probe])

        results = self.results
        results.clear()
        replica_deployer = self._deployer(self.clients.replica_cloudformation, self.clients.replica_s3)
        results["replica"] = replica_deployer.deploy(replica, options, diff_only=diff_only)
        replica_outputs = results["replica"].outputs
        if contract.OUTPUT_REPLICA_BUCKET_ARN not in replica_outputs:
            self.console.print(f"the primary stack's change set needs the replica stack's outputs: it is computed "
                               f"once {replica.name} exists")
            return results

        if options.no_execute and results["replica"].outcome == "planned":
            self.console.print("the primary change set is computed with the replica's current outputs")
        return self._run_primary(options, diff_only, primary_rendered, tags, {
            contract.PARAM_REPLICA_BUCKET_ARN: replica_outputs[contract.OUTPUT_REPLICA_BUCKET_ARN],
            contract.PARAM_REPLICA_KEY_ARN: replica_outputs[contract.OUTPUT_REPLICA_KEY_ARN],
        }, package=package)

    def _prepare_package(self, diff_only: bool, specs: list[StackSpec], *, vault: bool = False):
        check_sizes(specs)
        if self.validate and not diff_only:
            self._validate()
        package = (self.build_package or handler_package.build_package)()
        check_account(self.env, self.clients.sts, vault=vault)
        self.console.print(f"handler package {package.sha256[:12]} ({len(package.data):,} bytes, "
                           f"{len(package.files)} files)")
        return package

    def _upload(self, package, diff_only: bool) -> str:
        code_bucket = self._bucket(self.clients.cloudformation)
        if not diff_only:  # --no-execute too: the change set may be executed from the console
            uploaded = handler_package.upload_package(self.clients.s3, code_bucket, package)
            self.console.print(f"package {'uploaded to' if uploaded else 'already in'} s3://{code_bucket}/{package.key}",
                               soft_wrap=True)
        return code_bucket

    def _run_primary(self, options: Options, diff_only: bool, rendered: str, tags: dict, dr_values: dict,
                     package=None) -> dict[str, StackResult]:
        if package is None:
            self.results.clear()
            probe = StackSpec("primary", self.env.stack_name, self.env.region, rendered, {}, {})
            package = self._prepare_package(diff_only, [probe])
        code_bucket = self._upload(package, diff_only)
        values = {contract.PARAM_CODE_BUCKET: code_bucket, contract.PARAM_CODE_KEY: package.key, **dr_values,
                  contract.PARAM_TABLE_DELETION_PROTECTION: "true", **self._subnet_zones(rendered)}
        primary = StackSpec("primary", self.env.stack_name, self.env.region, rendered,
                            _parameters(rendered, values, self.env.stack_name),
                            {**tags, TAG_TEMPLATE: hashlib.sha256(rendered.encode()).hexdigest(),
                             TAG_PACKAGE: package.sha256},
                            self.env.termination_protection,
                            first_create=_first_create(rendered))
        primary_deployer = self._deployer(self.clients.cloudformation, self.clients.s3)
        self.results["primary"] = primary_deployer.deploy(primary, options, diff_only=diff_only)
        if self.env.source_bucket and self.results["primary"].outcome in ("executed", "no changes"):
            # A bucket the stack does not own: its events go to EventBridge for the capture rule.
            self.console.print(source_events.enable_eventbridge(self.clients.s3, self.env.source_bucket).line(),
                               highlight=False)
        self._note_unused_allowances(options, self.results)
        return self.results

    def _run_vault(self, options: Options, diff_only: bool) -> dict[str, StackResult]:
        """The vault stack, in the vault account and region, with the vault account's clients (the
        caller built them: DeployClients.for_vault); the handler package goes to that account's
        artifacts bucket."""
        if not self.env.has_vault:
            raise UserError(f"environment '{self.env.name}' has no vault: add a [env.{self.env.name}.vault] table")
        vault = self.env.vault
        rendered = (self.templates or render_environment(self.env))[1]
        tags = {**self.env.tag_dict, TAG_COMMIT: self.commit or git_commit()}
        self.results.clear()
        probe = StackSpec("vault", vault.stack_name, vault.region, rendered, {}, {})
        package = self._prepare_package(diff_only, [probe], vault=True)
        code_bucket = self._upload(package, diff_only)
        values = {contract.PARAM_CODE_BUCKET: code_bucket, contract.PARAM_CODE_KEY: package.key,
                  **self._subnet_zones(rendered, vault.stack_name, vault.region)}
        spec = StackSpec("vault", vault.stack_name, vault.region, rendered,
                         _parameters(rendered, values, vault.stack_name),
                         {**tags, TAG_TEMPLATE: hashlib.sha256(rendered.encode()).hexdigest(),
                          TAG_PACKAGE: package.sha256}, production=self.env.termination_protection)
        self.results["vault"] = self._deployer(self.clients.cloudformation, self.clients.s3).deploy(
            spec, options, diff_only=diff_only)
        key_arn = self.results["vault"].outputs.get(contract.OUTPUT_VAULT_KEY_ARN)
        if key_arn and key_arn != vault.key_arn:
            self.console.print(f"hand over to whoever deploys {self.env.stack_name}: vault.key_arn = \"{key_arn}\" "
                               "(environments file)", soft_wrap=True, highlight=False)
        self._note_unused_allowances(options, self.results)
        return self.results

    def _vault_outputs(self) -> dict | None:
        from backup_cfn.deploy.outputs import outputs_of

        return outputs_of(aws.vault_client(self.env, "cloudformation"), self.env.vault.stack_name)

    def _subnet_zones(self, rendered: str, stack_name: str | None = None, region: str | None = None) -> dict[str, str]:
        """With a VPC: zones hosting every endpoint service and Lambda, the deployed ones kept
        (zones.py). Default: the primary stack; the vault's in its own account and region."""
        if not zones.declared(rendered):
            return {}
        stack_name, region = stack_name or self.env.stack_name, region or self.env.region
        stack = stack_events.describe_stack(self.clients.cloudformation, stack_name)
        deployed = {p["ParameterKey"]: p["ParameterValue"] for p in (stack or {}).get("Parameters", [])}
        current = tuple(deployed[name] for name in contract.PARAM_SUBNET_ZONE_IDS if name in deployed)
        choice = zones.choose_zones(self._reader("ec2", region), region,
                                    zones.endpoint_services(rendered, region), current)
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
        if self._vault:   # the forecast reads the vault account, with its credentials
            return aws.vault_client(self.env, service, region)
        return aws.client(self.env, service, region)

    def _bucket(self, cloudformation) -> str:
        region = cloudformation.meta.region_name
        if region not in self._buckets:
            self._buckets[region] = artifacts.artifacts_bucket(cloudformation, poll=self.poll, console=self.console,
                                                               tags=self.env.tag_dict)
        return self._buckets[region]


