"""Built templates as plain dicts, and small walkers over them, for the template tests."""
from __future__ import annotations

import dataclasses
import json
from functools import lru_cache

from backup_cfn.config import load_environment, load_environments
from backup_cfn.stack.render import render
from backup_cfn.stack.template import build_dr_template, build_replica_template, build_template

ENV_NAMES = tuple(load_environments())
# Environments in the one-account layout (their disaster-recovery copy is the same-account replica).
ONE_ACCOUNT_ENV_NAMES = tuple(name for name, env in load_environments().items() if not env.has_vault)
VAULT_ENV_NAMES = tuple(name for name in ENV_NAMES if name not in ONE_ACCOUNT_ENV_NAMES)


@lru_cache(maxsize=None)
def primary(env_name: str) -> dict:
    return json.loads(render(build_template(load_environment(env_name))))


@lru_cache(maxsize=None)
def replica(env_name: str) -> dict:
    return json.loads(render(build_replica_template(load_environment(env_name))))


@lru_cache(maxsize=None)
def disaster_recovery(env_name: str) -> dict:
    """The environment's second template: its vault's, or its replica's."""
    return json.loads(render(build_dr_template(load_environment(env_name))))


def build_with(env_name: str, **changes) -> tuple[dict, dict]:
    env = dataclasses.replace(load_environment(env_name), **changes)
    return json.loads(render(build_template(env))), json.loads(render(build_replica_template(env)))


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict, name: str) -> dict:
    return template["Resources"][name].get("Properties", {})


def policy_documents(template: dict):
    """Yield (resource name, document) for every IAM, key, bucket, topic and queue policy."""
    for name, resource in template["Resources"].items():
        p = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in p.get("Policies", []):
                yield name, policy["PolicyDocument"]
            yield name + ".trust", p["AssumeRolePolicyDocument"]
        elif resource["Type"] == "AWS::KMS::Key":
            yield name, p["KeyPolicy"]
        elif "PolicyDocument" in p:
            yield name, p["PolicyDocument"]


def statements(document: dict) -> list[dict]:
    return document["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def role_actions(template: dict, role_name: str) -> set[str]:
    found = set()
    for policy in props(template, role_name).get("Policies", []):
        for statement in statements(policy["PolicyDocument"]):
            if statement["Effect"] == "Allow":
                found.update(as_list(statement["Action"]))
    return found
