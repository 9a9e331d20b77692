"""`backup-cfn deployer-policy`: the calls deploy, diff, status and delete really make (recorded on the
emulator) are all allowed by the policy it prints, and every action CloudFormation's handlers take
for the stacks' resources is allowed on those resources and not on others."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from backup_cfn import aws
from backup_cfn.config import load_environment
from backup_cfn.deploy.clients import DeployClients
from backup_cfn.deploy.commands import deployer_templates
from backup_cfn.deploy.deployment import Deployment
from backup_cfn.deploy.stack_spec import Options
from backup_cfn.deploy.status import stack_status
from backup_cfn.deploy.teardown import Target, delete_environment
from backup_cfn.permissions.deployer import (
    DEPLOY_OPERATIONS,
    MANAGED_POLICY_LIMIT,
    UNSCOPED,
    as_managed_policies,
    call_resource,
    deployer_policy,
    provisioning_actions,
    size,
)
from backup_cfn.permissions.iam import PolicyStore, Principal, Request, parse_policy
from backup_cfn.permissions.model import ACCOUNT, REPLICA, build_model
from backup_cfn.permissions.recorder import Recorder
from backup_cfn.stack.render import render_bootstrap, render_environment

from deploy_helpers import NO_WAIT, console, package_builder

DEPLOYER = "arn:aws:iam::{account}:role/deployer"


def templates_of(env) -> list[dict]:
    return [json.loads(body) for body in (*render_environment(env), render_bootstrap())]


def store_for(env, store: PolicyStore | None = None, *, vault: bool = False) -> tuple[PolicyStore, Principal]:
    """The deployer's policies, beside the resource policies of `store` (the key policies decide too):
    the platform team's, or (`vault`) the security team's, in the vault account."""
    store = store or PolicyStore()
    role = DEPLOYER.format(account=env.vault.account_id if vault else env.account_id)
    policy = deployer_policy(env, deployer_templates(env, vault=vault), vault=vault)
    for i, document in enumerate(as_managed_policies(policy)):
        store.add_identity_policy(role, parse_policy(document, f"deployer-{i}"))
    return store, Principal.assumed_role(role, "ci", name="Deployer")


@pytest.fixture
def recorded_deploy(one_account_env, tmp_path):
    """deploy, diff, status (with drift) and delete of the local environment in the one-account
    layout (primary and replica stacks), every call recorded."""
    local_env = one_account_env
    recorder = Recorder()
    plain = DeployClients.for_environment(local_env)
    clients = DeployClients(**{f.name: recorder.attach(getattr(plain, f.name), "Deployer")
                               for f in dataclasses.fields(plain)})
    rendered = render_environment(local_env)
    deployment = Deployment(local_env, clients, console(), poll=NO_WAIT, templates=rendered,
                            build_package=package_builder(tmp_path / "src"), validate=False, commit="0123abc",
                            make_reader=lambda service, region: recorder.attach(
                                aws.client(local_env, service, region), "Deployer"))
    deployment.run(Options(yes=True))
    deployment.run(Options(yes=True), diff_only=True)
    for cfn, label, name, body in ((clients.replica_cloudformation, "replica", local_env.replica_stack_name, rendered[1]),
                                   (clients.cloudformation, "primary", local_env.stack_name, rendered[0])):
        stack_status(cfn, label=label, name=name, rendered=body, console=console(), poll=NO_WAIT, drift=True)
    delete_environment(local_env.name, [Target("primary", local_env.stack_name, clients.cloudformation),
                                        Target("replica", local_env.replica_stack_name, clients.replica_cloudformation)],
                       Options(yes=True), console(), NO_WAIT)
    return recorder.distinct()


def test_every_call_deploy_diff_status_and_delete_make_is_allowed(one_account_env, recorded_deploy):
    operations = {(c.service, c.operation) for c in recorded_deploy}
    assert {("cloudformation", "CreateChangeSet"), ("cloudformation", "ExecuteChangeSet"), ("cloudformation", "DeleteStack"),
            ("cloudformation", "DetectStackDrift"), ("s3", "PutObject"), ("iam", "GetRole"),
            ("lambda", "GetAccountSettings")} <= operations   # the last two: the review's forecast
    assert_allowed(one_account_env, recorded_deploy)


def test_each_team_deploys_its_own_stack_with_its_own_policy(local_env, tmp_path):
    """The vault layout: the security team deploys, diffs, reads the status of and deletes the vault
    stack in the vault account; the platform team the primary in the production account. Each
    team's calls are allowed by the policy `deployer-policy` prints for it (`--vault`: the security
    team's), and each policy names only its own account."""
    vault_recorder, vault_clients, vault_outputs = _record_team(local_env, tmp_path, vault=True)
    platform_recorder, platform_clients, _ = _record_team(local_env, tmp_path, vault=False, vault_outputs=vault_outputs)
    for recorder_clients, label, name in ((platform_clients, "primary", local_env.stack_name),
                                          (vault_clients, "vault", local_env.vault.stack_name)):
        delete_environment(local_env.name, [Target(label, name, recorder_clients.cloudformation)], Options(yes=True),
                           console(), NO_WAIT)
    vault_calls, platform_calls = vault_recorder.distinct(), platform_recorder.distinct()
    assert {c.operation for c in vault_calls} >= {"CreateChangeSet", "ExecuteChangeSet", "DetectStackDrift", "DeleteStack"}
    assert_allowed(local_env, vault_calls, vault=True)
    assert_allowed(local_env, platform_calls)
    for vault, other in ((True, local_env.account_id), (False, local_env.vault.account_id)):
        policy = json.dumps(deployer_policy(local_env, deployer_templates(local_env, vault=vault), vault=vault))
        assert f":{other}:" not in policy, (vault, other)


def _record_team(env, tmp_path, *, vault: bool, vault_outputs: dict | None = None):
    recorder = Recorder()
    plain = DeployClients.for_vault(env) if vault else DeployClients.for_environment(env)
    clients = DeployClients(**{f.name: getattr(plain, f.name) and recorder.attach(getattr(plain, f.name), "Deployer")
                               for f in dataclasses.fields(plain)})
    make = (lambda service, region: aws.vault_client(env, service, region)) if vault else (
        lambda service, region: aws.client(env, service, region))
    deployment = Deployment(env, clients, console(), poll=NO_WAIT, build_package=package_builder(tmp_path / "src"),
                            validate=False, commit="0123abc",
                            make_reader=lambda service, region: recorder.attach(make(service, region), "Deployer"),
                            read_vault_outputs=lambda: vault_outputs)
    results = deployment.run(Options(yes=True), vault=vault)
    deployment.run(Options(yes=True), diff_only=True, vault=vault)
    label, name = ("vault", env.vault.stack_name) if vault else ("primary", env.stack_name)
    rendered = render_environment(env)[1 if vault else 0]
    stack_status(clients.cloudformation, label=label, name=name, rendered=rendered, console=console(), poll=NO_WAIT,
                 drift=True)
    return recorder, clients, results[label].outputs


def assert_allowed(env, calls, *, vault: bool = False) -> None:
    """Every recorded call of a deploy is one DEPLOY_OPERATIONS lists, allowed by the team's policy."""
    account = env.vault.account_id if vault else env.account_id
    store, deployer = store_for(env, vault=vault)
    # The forecast asks KMS whether a key alias the stack would create is taken; an existing key of
    # the account answers under its own policy: AWS's default one, delegating to the account's IAM.
    default_key_policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"}}]}
    store.add_resource_policy(parse_policy(default_key_policy, "existing-key"),
                              [f"arn:aws:kms:{r}:{account}:key/00000000-0000-0000-0000-000000000000"
                               for r in (env.region, env.replica_region)])
    operations = {(c.service, c.operation) for c in calls}
    missing = operations - set(DEPLOY_OPERATIONS)
    assert not missing, f"calls the deploy code makes that DEPLOY_OPERATIONS does not list: {sorted(missing)}"
    change_sets = {(c.region, c.params["ChangeSetName"]): c.params["StackName"] for c in calls
                   if c.operation == "CreateChangeSet"}

    def stack_of_change_set(region: str, change_set_arn: str) -> str:
        return change_sets[(region, re.search(r":changeSet/([^/]+)/", change_set_arn).group(1))]

    denied = []
    for call in calls:
        action = DEPLOY_OPERATIONS[(call.service, call.operation)]
        if action is None:
            continue
        resource = call_resource(call, account, stack_of_change_set)
        decision = store.evaluate(Request(deployer, action, resource))
        if not decision.allowed:
            denied.append(decision.explain())
    assert not denied, "\n".join(denied)


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_cloudformation_may_provision_the_stacks_resources_and_nothing_else(env_name):
    """Each team's policy (prod: the platform team's for the primary, the security team's for the
    vault, in its own account; dev: one team for both stacks) provisions its stacks' resources."""
    env = dataclasses.replace(load_environment(env_name), account_id=ACCOUNT)
    model = build_model(env)
    checked = 0
    for vault in (False, True) if env.has_vault else (False,):
        store, deployer = store_for(env, model.store, vault=vault)
        actions = provisioning_actions(deployer_templates(env, vault=vault), env.vault.region if vault else env.region)
        for resource in model.resources.values():
            if env.has_vault and (resource.stack == REPLICA) != vault:
                continue     # the other team's
            service = resource.arn.split(":")[2]
            for action in sorted(a for a in actions if a.startswith(f"{service}:") and a != "iam:PassRole"):
                # Grants on the keys are made by Lambda and DynamoDB for the resources they create.
                context = {"kms:GrantIsForAWSResource": True} if action == "kms:CreateGrant" else {}
                target = "*" if action in UNSCOPED else resource.arn   # authorised on no resource
                decision = store.evaluate(Request(deployer, action, target, context))
                assert decision.allowed, decision.explain()
                checked += 1
        for action, other in (("s3:PutBucketPolicy", "arn:aws:s3:::someone-elses-bucket"),
                              ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/admin"),
                              ("lambda:UpdateFunctionCode", f"arn:aws:lambda:{env.region}:{ACCOUNT}:function:billing")):
            assert not store.evaluate(Request(deployer, action, other)).allowed, (action, other)
    assert checked > 300


def test_roles_are_passed_only_to_the_services_that_take_them():
    env = dataclasses.replace(load_environment("prod"), account_id=ACCOUNT)
    store, deployer = store_for(env)
    role = build_model(env).resources["WorkerFunctionRole"].arn
    assert store.evaluate(Request(deployer, "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"})).allowed
    assert not store.evaluate(Request(deployer, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})).allowed
    assert not store.evaluate(Request(deployer, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin",
                                      {"iam:PassedToService": "lambda.amazonaws.com"})).allowed


def test_the_policy_fits_iams_managed_policy_limit_and_names_no_star_action():
    env = load_environment("prod")
    documents = as_managed_policies(deployer_policy(env, templates_of(env)))
    assert all(size(d) <= MANAGED_POLICY_LIMIT for d in documents)
    actions = [a for d in documents for s in d["Statement"] for a in s["Action"]]
    assert not [a for a in actions if "*" in a]
    star = [s for d in documents for s in d["Statement"] if s["Resource"] == "*"]
    assert [s["Sid"] for s in star] == ["ActionsWithoutResourceScope"]


@pytest.mark.parametrize("env_name, expected", [("prod", True), ("dev", False)])
def test_the_zone_choice_reads_are_granted_only_with_a_vpc(env_name, expected):
    """deploy asks EC2 which zones host the endpoint services (backup_cfn/deploy/zones.py) only for
    templates with isolated subnets; both actions are authorised on no resource."""
    env = dataclasses.replace(load_environment(env_name), account_id=ACCOUNT)
    store, deployer = store_for(env)
    for action in ("ec2:DescribeAvailabilityZones", "ec2:DescribeVpcEndpointServices"):
        assert store.evaluate(Request(deployer, action, "*")).allowed is expected
