"""From a troposphere Template to the bytes CloudFormation sees: rendering, the committed files,
and CloudFormation's size limits."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from troposphere import Template

from backup_cfn.config import Environment

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"
# CloudFormation's limits: a template body sent inline, and one fetched from S3 (TemplateURL).
INLINE_TEMPLATE_LIMIT = 51_200
TEMPLATE_URL_LIMIT = 1_000_000
BOOTSTRAP_TEMPLATE_NAME = "backup-cfn-bootstrap"


def render(t: Template) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(t.to_dict(), indent=2, sort_keys=True) + "\n"


def wire_body(rendered: str) -> str:
    """What CloudFormation receives: the rendered template without its indentation. Its size
    decides inline (up to INLINE_TEMPLATE_LIMIT) or TemplateURL."""
    return json.dumps(json.loads(rendered), sort_keys=True, separators=(",", ":"))


def dr_template_name(env: Environment) -> str:
    """The disaster-recovery stack's template: the vault's or, in the one-account layout, the replica's."""
    return f"backup-vault-{env.name}" if env.has_vault else f"backup-replica-{env.name}"


def template_paths(env: Environment, directory: Path = TEMPLATES_DIR) -> tuple[Path, Path]:
    """(primary, disaster-recovery) template files of an environment."""
    return directory / f"backup-{env.name}.json", directory / f"{dr_template_name(env)}.json"


def bootstrap_template_path(directory: Path = TEMPLATES_DIR) -> Path:
    return directory / f"{BOOTSTRAP_TEMPLATE_NAME}.json"


def render_environment(env: Environment) -> tuple[str, str]:
    """(primary, disaster-recovery) templates of an environment, rendered: the second is the
    vault's when the environment has one, else the replica's."""
    from backup_cfn.stack.template import build_dr_template, build_template

    return render(build_template(env)), render(build_dr_template(env))


def render_bootstrap() -> str:
    from backup_cfn.stack.bootstrap import build_bootstrap_template

    return render(build_bootstrap_template())


@dataclass(frozen=True)
class WriteResult:
    paths: list[Path]
    build_seconds: float


def built_templates(envs: list[Environment], directory: Path = TEMPLATES_DIR) -> list[tuple[Path, str]]:
    """(file, rendered text) of every committed template: each environment's two, and the
    account-wide bootstrap template."""
    built = [(path, text) for env in envs for path, text in zip(template_paths(env, directory),
                                                                render_environment(env))]
    return built + [(bootstrap_template_path(directory), render_bootstrap())]


def write_templates(envs: list[Environment], directory: Path = TEMPLATES_DIR) -> WriteResult:
    """Write the templates; files whose content is unchanged are not rewritten."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    wanted = built_templates(envs, directory)
    build_seconds = time.perf_counter() - started
    for path, text in wanted:
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return WriteResult(paths=[path for path, _ in wanted], build_seconds=build_seconds)
