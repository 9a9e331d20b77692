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
from backup_cfn.permissions.model import ACCOUNT, build_model
from backup_cfn.permissions.recorder import Recorder
from backup_cfn.stack.render import render_bootstrap, render_environment

from deploy_helpers import NO_WAIT, console, package_builder

DEPLOYER = "arn:aws:iam::{account}:role/deployer"


def templates_of(env) -> list[dict]:
    return [json.loads(body) for body in (*render_environment(env), render_bootstrap())]


def store_for(env, store: PolicyStore | None = None) -> tuple[PolicyStore, Principal]:
    """The deployer's policies, beside the resource policies of `store` (the key policies decide too)."""
    store = store or PolicyStore()
    role = DEPLOYER.format(account=env.account_id)
    for i, document in enumerate(as_managed_policies(deployer_policy(env, templates_of(env)))):
        store.add_identity_policy(role, parse_policy(document, f"deployer-{i}"))
    return store, Principal.assumed_role(role, "ci", name="Deployer")


@pytest.fixture
def recorded_deploy(local_env, tmp_path):
    """deploy, diff, status (with drift) and delete of the local environment, every call recorded."""
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


def test_every_call_deploy_diff_status_and_delete_make_is_allowed(local_env, recorded_deploy):
    store, deployer = store_for(local_env)
    # The forecast asks KMS whether a key alias the stack would create is taken; an existing key of
    # the account answers under its own policy: AWS's default one, delegating to the account's IAM.
    default_key_policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
        "Principal": {"AWS": f"arn:aws:iam::{local_env.account_id}:root"}}]}
    store.add_resource_policy(parse_policy(default_key_policy, "existing-key"),
                              [f"arn:aws:kms:{r}:{local_env.account_id}:key/00000000-0000-0000-0000-000000000000"
                               for r in (local_env.region, local_env.replica_region)])
    operations = {(c.service, c.operation) for c in recorded_deploy}
    missing = operations - set(DEPLOY_OPERATIONS)
    assert not missing, f"calls the deploy code makes that DEPLOY_OPERATIONS does not list: {sorted(missing)}"
    assert {("cloudformation", "CreateChangeSet"), ("cloudformation", "ExecuteChangeSet"), ("cloudformation", "DeleteStack"),
            ("cloudformation", "DetectStackDrift"), ("s3", "PutObject"), ("iam", "GetRole"),
            ("lambda", "GetAccountSettings")} <= operations   # the last two: the review's forecast
    change_sets = {(c.region, c.params["ChangeSetName"]): c.params["StackName"] for c in recorded_deploy
                   if c.operation == "CreateChangeSet"}

    def stack_of_change_set(region: str, change_set_arn: str) -> str:
        return change_sets[(region, re.search(r":changeSet/([^/]+)/", change_set_arn).group(1))]

    denied = []
    for call in recorded_deploy:
        action = DEPLOY_OPERATIONS[(call.service, call.operation)]
        if action is None:
            continue
        resource = call_resource(call, local_env.account_id, stack_of_change_set)
        decision = store.evaluate(Request(deployer, action, resource))
        if not decision.allowed:
            denied.append(decision.explain())
    assert not denied, "\n".join(denied)


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_cloudformation_may_provision_the_stacks_resources_and_nothing_else(env_name):
    env = dataclasses.replace(load_environment(env_name), account_id=ACCOUNT)
    model = build_model(env)
    store, deployer = store_for(env, model.store)
    actions = provisioning_actions(templates_of(env), env.region)
    checked = 0
    for resource in model.resources.values():
        service = resource.arn.split(":")[2]
        for action in sorted(a for a in actions if a.startswith(f"{service}:") and a != "iam:PassRole"):
            # Grants on the keys are made by Lambda and DynamoDB for the resources they create.
            context = {"kms:GrantIsForAWSResource": True} if action == "kms:CreateGrant" else {}
            target = "*" if action in UNSCOPED else resource.arn   # authorised on no resource
            decision = store.evaluate(Request(deployer, action, target, context))
            assert decision.allowed, decision.explain()
            checked += 1
    assert checked > 300
    for action, other in (("s3:PutBucketPolicy", "arn:aws:s3:::someone-elses-bucket"),
                          ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/admin"),
                          ("lambda:UpdateFunctionCode", f"arn:aws:lambda:{env.region}:{ACCOUNT}:function:billing")):
        assert not store.evaluate(Request(deployer, action, other)).allowed, (action, other)


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
