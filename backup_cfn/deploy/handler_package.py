"""The handler package: one reproducible zip of `handlers/`, the `backup_cfn` modules they import and
the third-party libraries those need, keyed in S3 by its SHA-256.

What goes in is found by reading the handlers' imports (transitively, through `backup_cfn`), so
the template-building modules, which need troposphere, stay out. Libraries are copied from this
checkout's virtualenv, which `requirements.txt` pins, with their requirements evaluated for the
Lambda target (python3.14 on arm64); only wheels tagged py3-none-any are accepted, whose files are
the same on every platform, so one zip serves the target whatever machine builds it. Same source, same
bytes: entries sorted, timestamps and permissions fixed, no bytecode.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from botocore.exceptions import ClientError
from packaging.requirements import Requirement

from backup_cfn import contract
from backup_cfn.errors import UserError
from backup_cfn.stack.bootstrap import PACKAGE_PREFIX

ROOT = Path(__file__).resolve().parent.parent.parent
LAMBDA_RUNTIME = contract.LAMBDA_RUNTIME
LAMBDA_ARCHITECTURE = contract.LAMBDA_ARCHITECTURE
# PEP 508 marker environment of the Lambda target, for the libraries' conditional requirements.
TARGET_MARKERS = {
    "python_version": "3.14", "python_full_version": "3.14.0", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "aarch64", "os_name": "posix", "extra": "",
}
# The Lambda Python runtime ships the AWS SDK and its dependencies; bundling them would only add weight.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"})
# Build-time tools: a handler reaching one of these has imported a template module by mistake.
FORBIDDEN = frozenset({"troposphere", "awacs", "cfn-lint", "moto"})
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
KEY_PREFIX = PACKAGE_PREFIX
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")
_INSTALL_RECORDS = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


@dataclass(frozen=True)
class Package:
    data: bytes
    sha256: str
    files: tuple[str, ...]
    distributions: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.sha256}.zip"


def build_package(root: Path = ROOT, handlers_dir: str = "handlers", local_package: str = "backup_cfn") -> Package:
    handler_root = root / handlers_dir
    handler_files = sorted(p for p in handler_root.rglob("*.py") if "__pycache__" not in p.parts)
    if not handler_files:
        raise UserError(f"no handlers to package: {handler_root} holds no .py files")
    local_modules, third_party = _import_closure(root, handler_files, local_package)
    entries: dict[str, bytes] = {}
    for path in handler_files:
        entries[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in local_modules:
        entries[path.relative_to(root).as_posix()] = path.read_bytes()
    distributions = _distributions_for(third_party)
    for dist in distributions:
        entries.update(_distribution_files(dist))
    data = _zip(entries)
    return Package(data=data, sha256=hashlib.sha256(data).hexdigest(), files=tuple(sorted(entries)),
                   distributions=tuple(sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions)))


def upload_package(s3, bucket: str, package: Package) -> bool:
    """Put the package under its SHA-256 key unless that key exists; True when it was uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=package.key)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in contract.MISSING_OBJECT_CODES:
            raise
    s3.put_object(Bucket=bucket, Key=package.key, Body=package.data, ContentType="application/zip",
                  Metadata={"sha256": package.sha256})
    return True


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def _import_closure(root: Path, start: list[Path], local_package: str) -> tuple[list[Path], set[str]]:
    """(local package files reached, top-level names of third-party imports) from the start files."""
    seen_files: set[Path] = set()
    local_files: list[Path] = []
    third_party: set[str] = set()
    queue = list(start)
    stdlib = sys.stdlib_module_names
    handler_tops = {p.relative_to(root).parts[0] for p in start}
    while queue:
        path = queue.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for module in _imported_modules(path, root):
            top = module.split(".")[0]
            if top == local_package:
                for found in _local_files(root, module):
                    if found not in seen_files:
                        local_files.append(found)
                        queue.append(found)
            elif top not in stdlib and top not in handler_tops and top != "__future__":
                third_party.add(top)
    return sorted(set(local_files)), third_party


def _imported_modules(path: Path, root: Path) -> list[str]:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package_parts = list(path.relative_to(root).with_suffix("").parts[:-1])
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import name` may name a submodule: try both, _local_files keeps what exists.
            modules.append(prefix)
            modules += [f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*"]
    return [m for m in modules if m]


def _local_files(root: Path, module: str) -> list[Path]:
    """The package __init__ files along the module's path and the module's own file, where they exist."""
    parts = module.split(".")
    found = []
    for depth in range(1, len(parts) + 1):
        base = root.joinpath(*parts[:depth])
        if (base / "__init__.py").is_file():
            found.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            found.append(base.with_suffix(".py"))
            break
        else:
            break
    return found


def _distributions_for(top_level_names: set[str]) -> list[importlib.metadata.Distribution]:
    owners = importlib.metadata.packages_distributions()
    wanted: dict[str, importlib.metadata.Distribution] = {}
    pending = []
    for name in sorted(top_level_names):
        if name not in owners:
            raise UserError(f"handlers import '{name}', which no installed distribution provides; add it to requirements.in")
        pending += owners[name]
    while pending:
        dist_name = _normalise(pending.pop())
        if dist_name in wanted or dist_name in RUNTIME_PROVIDED:
            continue
        if dist_name in FORBIDDEN:
            raise UserError(f"handlers reach '{dist_name}', a build-time tool: a handler or the engine imports a "
                            f"template-building module")
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise UserError(f"the handlers need '{dist_name}' on {LAMBDA_RUNTIME}, but it is not installed in this "
                            f"virtualenv: add it to requirements.in and requirements.txt") from None
        _require_pure_wheel(dist)
        wanted[dist_name] = dist
        for requirement in dist.requires or []:
            parsed = Requirement(requirement)
            if parsed.marker is None or parsed.marker.evaluate(TARGET_MARKERS):
                pending.append(parsed.name)
    return [wanted[name] for name in sorted(wanted)]


def _require_pure_wheel(dist: importlib.metadata.Distribution) -> None:
    """Only wheels tagged for any platform (py3-none-any) are the same on the Lambda target as here."""
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    if not tags or not all(tag.endswith("-none-any") and tag.split("-")[0].startswith(("py3", "py2.py3"))
                           for tag in tags):
        raise UserError(f"{dist.metadata['Name']} {dist.version} is not a pure-Python wheel (tags: "
                        f"{', '.join(tags) or 'unknown'}); the package takes only those, so that it runs on "
                        f"{LAMBDA_RUNTIME} {LAMBDA_ARCHITECTURE}")


def _distribution_files(dist: importlib.metadata.Distribution) -> dict[str, bytes]:
    files = {}
    for entry in dist.files or []:
        posix = PurePosixPath(entry.as_posix())
        if posix.parts[0] == ".." or "__pycache__" in posix.parts or posix.suffix == ".pyc":
            continue
        if posix.parts[0].endswith(".dist-info") and posix.name in _INSTALL_RECORDS:
            continue
        if posix.suffix in _NATIVE_SUFFIXES:
            raise UserError(f"{dist.metadata['Name']} {dist.version} holds native code ({posix}); the package takes "
                            f"only pure-Python libraries so that it runs on {LAMBDA_RUNTIME} {LAMBDA_ARCHITECTURE}")
        files[str(posix)] = Path(dist.locate_file(entry)).read_bytes()
    return files


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
