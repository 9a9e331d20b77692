"""AWS Control Tower's proactive controls, run on the templates before anything is deployed.

Organisations turn these controls on as CloudFormation Hooks, which refuse a stack that fails one.
The controls are AWS's own cfn-guard rules; AWS ships them, with the official cfn-guard binary,
inside the PyPI package `cdklabs-cdk-validator-cfnguard` (requirements-controltower.txt, installed
with --no-deps into its own virtualenv by the Makefile: nothing of it is imported, and it needs no
node). Each rule runs on the whole template (its "template" branch, which is stricter than the hook
branch: it sees intrinsics unresolved), every template as one data document of one cfn-guard call.

A control that cannot apply to one resource is exempted here, for that resource, with the reason;
SECURITY.md lists the same exemptions (tests/deploy/test_control_tower.py keeps the two in step).
"""
from __future__ import annotations

import fnmatch
import json
import platform
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
GUARD_VENV = ROOT / ".venv-controltower"
DISTRIBUTION = "cdklabs_cdk_validator_cfnguard"
RULES_PREFIX = "package/rules/control-tower/cfn-guard/"
_REPORTS_ON = re.compile(r"^#\s*Reports on:\s*\n((?:#\s+AWS::\S+.*\n)+)", re.MULTILINE)
_RESOURCE_PATH = re.compile(r"^/Resources/([^/]+)(?:/Properties)?(/.*)?$")

_ACCESS_LOGS = ("S3 server access logs are delivered only to a bucket with SSE-S3 default encryption (SSE-KMS is "
                "not supported), without Object Lock, that does not log into itself (S3 User Guide, 'Enabling "
                "Amazon S3 server access logging')")
_ARTIFACTS = ("the account-wide artifacts bucket exists before any environment's key (SSE-S3, so CloudFormation and "
              "Lambda read it with no key policy) and holds only build artifacts also in git; CloudTrail records "
              "its changes")
_NO_VPC = ("the environment sets vpc_endpoints = false (no interface endpoints to pay for); an environment "
           "deployed where CT.LAMBDA.PR.3 is on sets vpc_endpoints = true, as prod does")


@dataclass(frozen=True)
class Exemption:
    control: str
    template: str      # a glob over template file names
    resource: str      # logical ID
    reason: str


EXEMPTIONS = (
    *(Exemption(control, "backup-*.json", log_bucket, _ACCESS_LOGS)
      for control in ("CT.S3.PR.2", "CT.S3.PR.9", "CT.S3.PR.10")
      for log_bucket in ("AccessLogBucket", "ReplicaAccessLogBucket", "VaultAccessLogBucket")),
    Exemption("CT.S3.PR.2", "backup-cfn-bootstrap.json", "ArtifactsBucket", _ARTIFACTS),
    Exemption("CT.S3.PR.10", "backup-cfn-bootstrap.json", "ArtifactsBucket", _ARTIFACTS),
    *(Exemption("CT.LAMBDA.PR.3", f"backup-{env}.json", f"{role}Function", _NO_VPC)
      for env in ("dev", "local")
      for role in ("Initiator", "Worker", "Pruner", "Drill", "DeadLetter", "Restorer", "Capture")),
    *(Exemption("CT.LAMBDA.PR.3", "backup-vault-local.json", f"{role}Function", _NO_VPC)
      for role in ("VaultLock", "VaultDrill")),
)


class ControlTowerUnavailable(RuntimeError):
    """The rules package is not installed (make installs it: `make test`)."""


@dataclass(frozen=True)
class Rule:
    control: str            # CT.S3.PR.8
    text: str
    reports_on: frozenset[str]


@dataclass(frozen=True)
class Failure:
    control: str
    template: str
    resource: str
    detail: str             # the failing property paths and values, shortened

    def exemption(self) -> Exemption | None:
        return next((e for e in EXEMPTIONS if e.control == self.control and e.resource == self.resource
                     and fnmatch.fnmatch(self.template, e.template)), None)

    def line(self) -> str:
        return f"{self.template}: {self.resource}: {self.control}: {self.detail}"


@dataclass
class ControlReport:
    guard_version: str
    controls: list[str] = field(default_factory=list)     # the controls applicable to these templates
    passed: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def blocking(self) -> list[Failure]:
        return [f for f in self.failures if f.exemption() is None]

    @property
    def exempted(self) -> list[Failure]:
        return [f for f in self.failures if f.exemption() is not None]


def _tarball(venv: Path) -> Path:
    found = sorted(venv.glob(f"lib/python*/site-packages/{DISTRIBUTION.replace('_', '/', 1)}/_jsii/*.jsii.tgz"))
    if not found:
        raise ControlTowerUnavailable(f"no Control Tower rules in {venv}: run `make test` (it installs "
                                      "requirements-controltower.txt there)")
    return found[0]


def load_rules(venv: Path = GUARD_VENV) -> list[Rule]:
    rules = []
    with tarfile.open(_tarball(venv)) as archive:
        for member in archive.getmembers():
            if not (member.name.startswith(RULES_PREFIX) and member.name.endswith(".guard")):
                continue
            text = archive.extractfile(member).read().decode()
            stem = Path(member.name).stem            # ct-s3-pr-8
            service, number = re.fullmatch(r"ct-(.+)-pr-(\d+)", stem).groups()
            block = _REPORTS_ON.search(text)
            types = frozenset(re.findall(r"AWS::\w+::\w+", block.group(1))) if block else frozenset()
            rules.append(Rule(f"CT.{service.upper()}.PR.{number}", text, types))
    return sorted(rules, key=lambda r: (r.control.rsplit(".", 1)[0], int(r.control.rsplit(".", 1)[1])))


def guard_binary(venv: Path = GUARD_VENV) -> Path:
    """The official cfn-guard the package ships, extracted once beside the virtualenv."""
    system = {"Linux": "ubuntu", "Darwin": "macos"}.get(platform.system())
    machine = {"x86_64": "x86_64", "AMD64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(platform.machine())
    if system is None or machine is None:
        raise ControlTowerUnavailable(f"the rules package ships no cfn-guard for {platform.system()} {platform.machine()}")
    binary = venv / "cfn-guard" / system / machine / "cfn-guard"
    if not binary.exists():
        with tarfile.open(_tarball(venv)) as archive:
            data = archive.extractfile(f"package/bin/{system}/{machine}/cfn-guard").read()
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        partial.write_bytes(data)
        partial.chmod(0o755)
        partial.replace(binary)
    return binary


def run_guard(binary: Path, rule_text: str, documents: list[dict]) -> list[dict]:
    """One cfn-guard call: one rule over several templates; one structured report per template."""
    payload = json.dumps({"rules": [rule_text], "data": [json.dumps(d) for d in documents]})
    process = subprocess.run([str(binary), "validate", "--payload", "--output-format", "json",
                              "--show-summary", "none", "--structured"], input=payload, capture_output=True, text=True,
                             check=False)
    try:
        reports = json.loads(process.stdout)
    except ValueError:
        raise RuntimeError(f"cfn-guard exited {process.returncode}: {process.stderr.strip() or process.stdout[:300]}") \
            from None
    if not isinstance(reports, list) or len(reports) != len(documents):
        raise RuntimeError(f"cfn-guard gave an unexpected report: {process.stdout[:300]}")
    return reports


def failing_resources(report: dict) -> dict[str, dict[str, str]]:
    """{logical ID: {property path: what was found}} from a non-compliant structured report."""
    found: dict[str, dict[str, str]] = {}

    def add(path: str, detail: str) -> None:
        match = _RESOURCE_PATH.match(path or "")
        if match:
            prop = (match.group(2) or "/").lstrip("/") or "(resource)"
            found.setdefault(match.group(1), {}).setdefault(prop, detail)

    def walk(node) -> None:
        if isinstance(node, dict):
            if "traversed_to" in node and "remaining_query" in node:
                add(f"{(node.get('traversed_to') or {}).get('path', '')}/{node['remaining_query']}".replace("//", "/"),
                    "missing")
                return
            if isinstance(node.get("path"), str) and "value" in node:
                value = json.dumps(node["value"], sort_keys=True)
                add(node["path"], "value=" + (value if len(value) <= 60 else value[:57] + "..."))
                return
            for key, value in node.items():
                if key != "to":   # the expected side of a comparison
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(report.get("not_compliant", []))
    return found


def _detail(paths: dict[str, str], limit: int = 4) -> str:
    items = sorted(paths.items())
    shown = ", ".join(f"{path} ({what})" for path, what in items[:limit])
    return shown + (f", +{len(items) - limit} more" if len(items) > limit else "")


def check_templates(templates: dict[str, dict], venv: Path = GUARD_VENV,
                    only: frozenset[str] | None = None) -> ControlReport:
    """Every control that reports on a resource type these templates hold (or those of `only`), on
    every template."""
    binary = guard_binary(venv)
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    report = ControlReport(guard_version=version)
    names = sorted(templates)
    present = {r.get("Type") for t in templates.values() for r in t.get("Resources", {}).values()}
    for rule in load_rules(venv):
        if not rule.reports_on & present or (only is not None and rule.control not in only):
            continue
        report.controls.append(rule.control)
        for name, result in zip(names, run_guard(binary, rule.text, [templates[n] for n in names])):
            if not result.get("not_compliant"):
                report.passed += bool(result.get("compliant"))
                continue
            for resource, paths in sorted(failing_resources(result).items()):
                report.failures.append(Failure(rule.control, name, resource, _detail(paths)))
    return report
