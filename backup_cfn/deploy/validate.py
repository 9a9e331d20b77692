"""cfn-lint (through its Python API, every rule including informational ones) and CloudFormation's
size limits, on the templates the code builds."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from cfnlint.api import ManualArgs, lint

from backup_cfn.config import Environment
from backup_cfn.stack.render import (
    BOOTSTRAP_TEMPLATE_NAME,
    INLINE_TEMPLATE_LIMIT,
    TEMPLATE_URL_LIMIT,
    dr_template_name,
    render_bootstrap,
    render_environment,
    wire_body,
)
from backup_cfn.stack.resource_options import LINT_SKIP_REASONS


@dataclass(frozen=True)
class Finding:
    template: str
    severity: str  # "error", "warning", "informational"
    rule: str
    path: str
    message: str

    @property
    def blocking(self) -> bool:
        return self.severity in ("error", "warning")

    def line(self) -> str:
        return f"{self.template}: {self.severity} {self.rule} at {self.path}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    skipped_checks: list[str] = field(default_factory=list)  # "template/resource: CHECK: reason"
    skipped_lint: list[str] = field(default_factory=list)    # "template/resource: RULE: reason"

    @property
    def blocking_count(self) -> int:
        return sum(f.blocking for f in self.findings)

    @property
    def ok(self) -> bool:
        return self.blocking_count == 0

    def lines(self) -> list[str]:
        out = [f.line() for f in sorted(self.findings, key=lambda f: (not f.blocking, f.template, f.rule))]
        for name, size in sorted(self.sizes.items()):
            delivery = "inline" if size <= INLINE_TEMPLATE_LIMIT else "via the artifacts bucket (TemplateURL)"
            out.append(f"{name}: {size:,} bytes as sent, deployed {delivery}")
        out += [f"cfn-lint skip {line}" for line in self.skipped_lint]
        out += [f"checkov skip {line}" for line in self.skipped_checks]
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning", "informational")}
        out.append(f"cfn-lint: {counts['error']} errors, {counts['warning']} warnings, "
                   f"{counts['informational']} informational on {len(self.sizes)} templates")
        return out


_SEVERITY = {"E": "error", "W": "warning", "I": "informational"}


def lint_template(name: str, body: str, regions: list[str]) -> list[Finding]:
    matches = lint(body, config=ManualArgs(regions=regions, include_checks=["I"]))
    return [
        Finding(template=name, severity=_SEVERITY.get(m.rule.id[0], "error"), rule=m.rule.id,
                path="/".join(str(p) for p in (m.path or [])) or f"line {m.linenumber}", message=m.message)
        for m in matches
    ]


def check_size(name: str, body: str) -> list[Finding]:
    """On the body as sent (see render.wire_body)."""
    size = len(body.encode())
    if size > TEMPLATE_URL_LIMIT:
        return [Finding(name, "error", "size", "template",
                        f"{size:,} bytes is over CloudFormation's limit of {TEMPLATE_URL_LIMIT:,} bytes")]
    return []


def validate_environments(envs: list[Environment], *, bootstrap: bool = True) -> Report:
    """Every environment's two templates, and the bootstrap template (once, for every region the
    environments deploy to: it is created in each)."""
    report = Report()
    for env in envs:
        primary, disaster_recovery = render_environment(env)
        _check(report, f"backup-{env.name}", primary, [env.region])
        _check(report, dr_template_name(env), disaster_recovery, [env.replica_region])
    if bootstrap and envs:
        regions = sorted({region for env in envs for region in (env.region, env.replica_region)})
        _check(report, BOOTSTRAP_TEMPLATE_NAME, render_bootstrap(), regions)
    return report


def _check(report: Report, name: str, body: str, regions: list[str]) -> None:
    sent = wire_body(body)
    report.sizes[name] = len(sent.encode())
    report.findings += check_size(name, sent)
    report.findings += lint_template(name, body, regions)
    report.skipped_checks += checkov_skips(name, body)
    report.skipped_lint += lint_skips(name, body)


def checkov_skips(name: str, body: str) -> list[str]:
    """The checkov checks each resource declares not applicable, with the reason it gives."""
    resources = json.loads(body)["Resources"]
    return [f"{name}/{logical}: {skip['id']}: {skip['comment']}"
            for logical, resource in sorted(resources.items())
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])]


def lint_skips(name: str, body: str) -> list[str]:
    """The cfn-lint rules each resource ignores, with the reason it gives (resource_options.skip_lint)."""
    resources = json.loads(body)["Resources"]
    return [f"{name}/{logical}: {rule}: {reason}"
            for logical, resource in sorted(resources.items())
            for rule, reason in resource.get("Metadata", {}).get(LINT_SKIP_REASONS, {}).items()]
