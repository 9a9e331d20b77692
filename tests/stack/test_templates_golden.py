"""The committed templates are exactly what the code builds (run `make template` after a change)."""
from __future__ import annotations

import difflib

import pytest

from backup_cfn.config import load_environments
from backup_cfn.stack.render import TEMPLATES_DIR, built_templates, render_environment, template_paths, write_templates

ENVS = load_environments()


BUILT = built_templates(list(ENVS.values()))


@pytest.mark.parametrize("path, built", BUILT, ids=[path.name for path, _ in BUILT])
def test_committed_templates_match_the_code(path, built):
    committed = path.read_text() if path.exists() else ""
    if committed != built:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), built.splitlines(True),
                                            f"committed/{path.name}", f"built/{path.name}", n=2))
        pytest.fail(f"{path.name} is stale; run `make template`. Diff (first 80 lines):\n"
                    + "".join(diff.splitlines(True)[:80]))


def test_every_environment_has_a_primary_and_a_replica_template_the_bootstrap_one_and_nothing_else():
    expected = {p.name for env in ENVS.values() for p in template_paths(env)} | {"backup-cfn-bootstrap.json"}
    assert {p.name for p in TEMPLATES_DIR.glob("*.json")} == expected


def test_output_is_deterministic_and_sorted(tmp_path):
    env = ENVS["prod"]
    first, second = render_environment(env), render_environment(env)
    assert first == second
    write_templates([env], tmp_path)
    text = (tmp_path / "backup-prod.json").read_text()
    assert text == first[0] and text.endswith("\n")
    keys = list(__import__("json").loads(text)["Resources"])
    assert keys == sorted(keys)


def test_per_build_values_are_parameters_not_literals():
    body = render_environment(ENVS["dev"])[0]
    template = __import__("json").loads(body)
    assert set(template["Parameters"]) == {"HandlerCodeBucket", "HandlerCodeKey", "ReplicaBucketArn", "ReplicaKeyArn"}
    for function in (r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"):
        assert function["Properties"]["Code"] == {"S3Bucket": {"Ref": "HandlerCodeBucket"},
                                                  "S3Key": {"Ref": "HandlerCodeKey"}}
    assert "arn:aws:s3:::" not in body.replace("arn:${AWS::Partition}", "")
