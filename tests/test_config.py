"""The environments file: what loads, and the one-line error for each kind of mistake."""
from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from backup_cfn.config import ConfigError, load_environment, load_environments
from cli import cli

GOOD = """
[defaults]
retention_days = 60

[defaults.tags]
Project = "backup-cfn"

[env.dev]
stack_name = "backup-dev"
region = "us-east-1"
replica_region = "us-west-2"
tags = { Environment = "dev" }
"""


def write(tmp_path, text: str):
    path = tmp_path / "environments.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_repository_environments_file_loads_dev_prod_and_local():
    envs = load_environments()
    assert {"dev", "prod", "local"} <= set(envs)
    assert envs["prod"].retention_days == 60
    assert envs["prod"].schedule == "cron(0 2 * * ? *)"
    assert envs["local"].is_local and not envs["prod"].is_local
    assert all(e.replica_region != e.region for e in envs.values())


def test_defaults_and_tags_merge_per_environment(tmp_path):
    env = load_environment("dev", write(tmp_path, GOOD))
    assert env.retention_days == 60
    assert env.tag_dict == {"Project": "backup-cfn", "Environment": "dev"}
    assert env.object_lock_mode == "none" and env.trusted_account_ids == ()


def test_retry_schedule_defaults_and_reaches_the_functions(tmp_path):
    from backup_cfn import contract
    from backup_cfn.stack.template import build_template

    env = load_environment("dev", write(tmp_path, GOOD))
    assert (env.retry_base_seconds, env.retry_max_seconds) == (60, 900)
    variables = build_template(env).to_dict()["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"]
    assert (variables[contract.ENV_RETRY_BASE_SECONDS], variables[contract.ENV_RETRY_MAX_SECONDS]) == ("60", "900")


def test_environment_is_frozen(tmp_path):
    env = load_environment("dev", write(tmp_path, GOOD))
    with pytest.raises(AttributeError):
        env.retention_days = 1  # type: ignore[misc]


BAD = [
    ("unknown_key", 'colour = "blue"', "env 'dev': unknown field 'colour'"),
    ("negative_retention", "retention_days = -5", "field 'retention_days' must be between 1 and 3650 days, got -5"),
    ("bool_retention", "retention_days = true", "field 'retention_days' must be an integer, got True"),
    ("short_account", 'trusted_account_ids = ["12345"]', "field 'trusted_account_ids' must hold 12-digit account IDs"),
    ("numeric_account", "trusted_account_ids = [123456789012]", "field 'trusted_account_ids' must hold 12-digit"),
    ("bad_email", 'notification_email = "ops-at-example"', "field 'notification_email' is not an e-mail address"),
    ("same_region", 'replica_region = "us-east-1"', "field 'replica_region' must differ from region (us-east-1)"),
    ("unknown_region", 'region = "us-east-9"', "field 'region' is not a known AWS region: 'us-east-9'"),
    ("lock_mode", 'object_lock_mode = "strict"', "field 'object_lock_mode' must be one of none, governance, compliance"),
    ("schedule", 'schedule = "daily"', "field 'schedule' must be an EventBridge cron(...)"),
    ("concurrency", "max_concurrent_backups = 1", "field 'max_concurrent_backups' must be between 2 and 1000"),
    ("bucket", 'source_bucket = "Bad_Bucket"', "field 'source_bucket' is not a valid S3 bucket name"),
    ("endpoint", 'endpoint_url = "http://10.0.0.1:5000"', "field 'endpoint_url' must be a loopback http URL"),
    ("keep_monthly", "keep_monthly = -1", "field 'keep_monthly' must be between 0 (off) and 120, got -1"),
    ("keep_weekly", "keep_weekly = 521", "field 'keep_weekly' must be between 0 (off) and 520, got 521"),
    ("keep_yearly", "keep_yearly = 1.5", "field 'keep_yearly' must be an integer, got 1.5"),
    ("drill_users", "drill_users = 0", "field 'drill_users' must be between 1 and 1000, got 0"),
    ("drill_schedule", 'drill_schedule = "weekly"', "field 'drill_schedule' must be an EventBridge cron(...)"),
    ("retry_base_zero", "retry_base_seconds = 0", "field 'retry_base_seconds' must be between 1 and 3600 seconds, got 0"),
    ("retry_base_text", 'retry_base_seconds = "1m"', "field 'retry_base_seconds' must be an integer, got '1m'"),
    ("retry_max_below_base", "retry_base_seconds = 120\nretry_max_seconds = 60",
     "field 'retry_max_seconds' must be between retry_base_seconds (120) and 3600 seconds, got 60: every retry"),
    ("retry_max_too_long", "retry_max_seconds = 7200",
     "field 'retry_max_seconds' must be between retry_base_seconds (60) and 3600 seconds, got 7200"),
]


@pytest.mark.parametrize("case,line,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_value_names_file_env_and_field(tmp_path, case, line, expected):
    text = GOOD.replace('replica_region = "us-west-2"\n', f'replica_region = "us-west-2"\n{line}\n', 1)
    if line.startswith(("replica_region", "region")):
        key = line.split(" =")[0]
        text = "\n".join(l for l in GOOD.splitlines() if not l.startswith(f"{key} =")).replace(
            'stack_name = "backup-dev"', f'stack_name = "backup-dev"\n{line}')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_environment("dev", path)
    message = error.value.message
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_missing_required_field(tmp_path):
    path = write(tmp_path, GOOD.replace('stack_name = "backup-dev"\n', ""))
    with pytest.raises(ConfigError, match="env 'dev': field 'stack_name' is required"):
        load_environments(path)


def test_unknown_environment_lists_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown environment 'qa' \(known: dev\)"):
        load_environment("qa", write(tmp_path, GOOD))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_environments(write(tmp_path, "[env.dev\n"))
    with pytest.raises(ConfigError, match="environments file not found"):
        load_environments(tmp_path / "nope.toml")


def test_cli_reports_a_bad_file_in_one_line_with_exit_1(tmp_path):
    path = write(tmp_path, GOOD.replace("retention_days = 60", "retention_days = -1"))
    result = CliRunner().invoke(cli, ["--environments", str(path), "template", "--env", "dev",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"Error: {path}: env 'dev': field 'retention_days' must be between 1 and 3650 days, got -1"]
    assert "Traceback" not in result.output


VAULTED = """
[env.prod]
stack_name = "backup-prod"
region = "us-east-1"
account_id = "111122223333"

[env.prod.vault]
account_id = "444455556666"
region = "us-west-2"
profile = "backup-vault"
"""

BAD_VAULTS = [
    ("no_vault_account", ('account_id = "444455556666"\n', ""), "field 'vault.account_id' must be the vault account's"),
    ("same_account", ('account_id = "444455556666"', 'account_id = "111122223333"'),
     "field 'vault.account_id' must differ from the environment's own account 111122223333"),
    ("no_own_account", ('account_id = "111122223333"\n', ""), "field 'account_id' is required with a vault"),
    ("other_replica_region", ('region = "us-east-1"\n', 'region = "us-east-1"\nreplica_region = "eu-west-1"\n'),
     "field 'replica_region' must be the vault's region (us-west-2) or left out"),
    ("governance", ('region = "us-east-1"\n', 'region = "us-east-1"\nobject_lock_mode = "governance"\n'),
     "field 'object_lock_mode' must be none or compliance with a vault"),
    ("both_credentials", ('profile = "backup-vault"', 'profile = "backup-vault"\nrole_arn = "arn:aws:iam::444455556666:role/x"'),
     "field 'vault.role_arn' give profile or role_arn, not both"),
    ("role_elsewhere", ('profile = "backup-vault"', 'role_arn = "arn:aws:iam::111122223333:role/x"'),
     "field 'vault.role_arn' must be a role ARN in the vault account 444455556666"),
    ("key_alias", ('profile = "backup-vault"', 'profile = "backup-vault"\nkey_arn = "arn:aws:kms:us-west-2:444455556666:alias/v"'),
     "field 'vault.key_arn' must be a KMS key ARN (not an alias) in us-west-2 of account 444455556666"),
    ("lock_mode", ('profile = "backup-vault"', 'profile = "backup-vault"\nlock_mode = "none"'),
     "field 'vault.lock_mode' must be one of"),
    ("recovery_is_production", ('profile = "backup-vault"', 'profile = "backup-vault"\nrecovery_account_ids = ["111122223333"]'),
     "field 'vault.recovery_account_ids' lists the production account 111122223333"),
    ("unknown_field", ('profile = "backup-vault"', 'profile = "backup-vault"\ncolour = "blue"'),
     "field 'vault.colour' is not a vault field"),
    ("long_name", ('profile = "backup-vault"', 'profile = "backup-vault"\nstack_name = "v' + "x" * 60 + '"'),
     "makes the vault bucket name"),
]


def test_a_vault_table_makes_the_vault_the_disaster_recovery_copy(tmp_path):
    env = load_environment("prod", write(tmp_path, VAULTED))
    assert env.has_vault and env.replica_region == "us-west-2"
    assert (env.vault.stack_name, env.vault.lock_mode, env.vault.bucket_name) == (
        "backup-prod-vault", "compliance", "backup-prod-vault-444455556666")


@pytest.mark.parametrize("case,change,expected", BAD_VAULTS, ids=[b[0] for b in BAD_VAULTS])
def test_bad_vault_value_names_its_field(tmp_path, case, change, expected):
    old, new = change
    assert old in VAULTED, case
    path = write(tmp_path, VAULTED.replace(old, new, 1) if case != "no_vault_account" else
                 VAULTED.replace('[env.prod.vault]\naccount_id = "444455556666"\n', "[env.prod.vault]\n"))
    with pytest.raises(ConfigError) as error:
        load_environment("prod", path)
    assert expected in error.value.message and "\n" not in error.value.message
