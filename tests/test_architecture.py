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


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """Each import statement of a file, anywhere in it: (the module, resolved to an absolute name;
    the names taken from it, empty for a plain `import`)."""
    tree = ast.parse(path.read_text())
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            found.append((".".join(part for part in (base, node.module or "") if part),
                          [alias.name for alias in node.names]))
    return found


def imported(path: Path) -> set[str]:
    """Every module a file imports, resolved to absolute names (with `module.name` for each name taken)."""
    return {name for module, taken in imports(path) for name in [module] + [f"{module}.{t}" for t in taken]}


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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports: at module level, inside functions, or for type
    checking alike, since each is an arrow a reader follows."""
    files = {module_name(p): p for p in sources(PACKAGE, ROOT / "handlers", ROOT / "scripts") + [ROOT / "cli.py"]}

    def targets(module: str, taken: list[str]) -> set[str]:
        submodules = {f"{module}.{t}" for t in taken} & files.keys()    # `from package import module`
        return submodules if submodules and len(submodules) == len(taken) else {module} | submodules

    return {name: {m for module, taken in imports(path) for m in targets(module, taken) if m in files and m != name}
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    """Imports only point down, lazy ones too: a module low in the house that imports upward inside
    a function ties the floors into a circle."""
    assert cycles(import_graph()) == []


def test_the_tests_mirror_the_layers():
    """A reader who changes backup_cfn/engine/ finds its tests in tests/engine/: every folder of tests
    is a layer of the package (support/ holds the helpers they share), and only the tests that span
    the layers stay at the top."""
    tests = ROOT / "tests"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))} - {"support"}
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert folders <= layers, f"test folders that are no layer: {sorted(folders - layers)}"
    assert len(list(tests.glob("test_*.py"))) <= 5
