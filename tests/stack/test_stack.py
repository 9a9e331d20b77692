import json

import pytest

from backup_cfn import aws
from backup_cfn.deploy.outputs import stack_outputs
from backup_cfn.errors import UserError


def _template(outputs: dict[str, str]) -> str:
    return json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    })


def test_stack_outputs_merges_primary_and_replica(one_account_env):
    local_env = one_account_env
    aws.client(local_env, "cloudformation").create_stack(
        StackName=local_env.stack_name, TemplateBody=_template({"BackupBucketName": "b", "Shared": "primary"}))
    aws.client(local_env, "cloudformation", local_env.replica_region).create_stack(
        StackName=local_env.replica_stack_name, TemplateBody=_template({"ReplicaBucketName": "r", "Shared": "replica"}))
    assert stack_outputs(local_env) == {"BackupBucketName": "b", "ReplicaBucketName": "r", "Shared": "primary"}


def test_stack_outputs_without_primary_stack_names_the_deploy_command(local_env):
    with pytest.raises(UserError, match="backup-cfn deploy --env local"):
        stack_outputs(local_env)
