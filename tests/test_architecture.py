"""The layers the tree shows, kept: each rule here is one arrow of the architecture
(docs/architecture.md, "The code's layers"), checked on the source, so a shortcut across layers
fails the suite."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "backup_cfn"
STDLIB = sys.stdlib_module_names


def sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module a file imports, resolved to absolute names."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def top(name: str) -> str:
    return name.split(".")[0]


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_contract_imports_nothing():
    assert {top(m) for m in imported(PACKAGE / "contract.py")} <= {"__future__"}


@pytest.mark.parametrize("path", sources(PACKAGE / "engine"), ids=relative)
def test_the_engine_depends_only_on_the_contract_the_sdk_and_itself(path):
    """It ships in the Lambda package: no troposphere, click, rich or moto, no other layer."""
    for module in imported(path):
        if top(module) in STDLIB or top(module) in ("__future__", "boto3", "botocore"):
            continue
        assert module.startswith(("backup_cfn.engine", "backup_cfn.contract")) or module == "backup_cfn", \
            f"{relative(path)} imports {module}"


@pytest.mark.parametrize("path", sources(ROOT / "handlers"), ids=relative)
def test_handlers_hand_off_to_the_engine(path):
    for module in imported(path):
        if top(module) in STDLIB or top(module) in ("__future__", "aws_lambda_powertools"):
            continue
        assert module.startswith(("backup_cfn.engine", "backup_cfn.contract", "handlers")) \
            or module == "backup_cfn", f"{relative(path)} imports {module}"


@pytest.mark.parametrize("path", [p for p in sources(PACKAGE, ROOT / "handlers") if "local" not in p.parts]
                         + [ROOT / "cli.py"], ids=relative)
def test_only_the_local_layer_knows_the_emulator(path):
    """Outside backup_cfn/local/, nothing imports moto, and only the seam (backup_cfn/aws.py) asks
    whether an environment is the emulator."""
    assert not any(top(m) == "moto" for m in imported(path)), f"{relative(path)} imports moto"
    if path != PACKAGE / "aws.py":
        uses = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Attribute) and node.attr == "is_local"]
        assert uses == [], f"{relative(path)} branches on is_local at lines {uses}: go through backup_cfn.aws"


def test_the_stack_model_does_not_reach_aws():
    """Building templates needs no client: stack/ imports neither boto3 nor the deploy or ops layers."""
    for path in sources(PACKAGE / "stack"):
        for module in imported(path):
            assert top(module) not in ("boto3", "botocore"), f"{relative(path)} imports {module}"
            assert not module.startswith(("backup_cfn.deploy", "backup_cfn.ops", "backup_cfn.local",
                                          "backup_cfn.engine")), f"{relative(path)} imports {module}"


def test_the_permission_checks_reach_no_aws():
    """permissions/ evaluates policies and translates recorded calls: it imports no SDK, and nothing
    in the engine, the handlers or the stack model depends on it."""
    for path in sources(PACKAGE / "permissions"):
        for module in imported(path):
            assert top(module) not in ("boto3", "botocore", "moto"), f"{relative(path)} imports {module}"
            assert not module.startswith(("backup_cfn.deploy", "backup_cfn.ops", "backup_cfn.local",
                                          "backup_cfn.engine")), f"{relative(path)} imports {module}"
    for path in sources(PACKAGE / "engine", PACKAGE / "stack", ROOT / "handlers"):
        assert not any(m.startswith("backup_cfn.permissions") for m in imported(path)), relative(path)


def test_the_cli_is_thin():
    """No boto3 in cli.py, and every command hands over to a do_* function."""
    assert not any(top(m) in ("boto3", "botocore") for m in imported(ROOT / "cli.py"))
    tree = ast.parse((ROOT / "cli.py").read_text())
    commands = [node for node in tree.body if isinstance(node, ast.FunctionDef)
                and any(isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command"
                        for d in node.decorator_list)]
    assert commands
    for command in commands:
        calls = {n.func.id for n in ast.walk(command) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert any(name.startswith(("do_", "print_estimate")) for name in calls), \
            f"cli.{command.name} calls no do_* function"


@pytest.mark.parametrize("path", sources(PACKAGE, ROOT / "handlers"), ids=relative)
def test_no_module_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= 500
