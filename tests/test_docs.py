"""The documentation kept honest: the command reference regenerated from the click commands, the
README short, every relative link and #anchor resolving, every docs page in the index once, every
make target documented."""
from __future__ import annotations

import difflib
import importlib.util
import re
from collections import Counter
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
README_MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
HELP_TARGET = re.compile(r"^([a-z-]+):.*## ", re.MULTILINE)
# a pointer from code into the docs: docs/<page>.md, or docs/<page>.md, "<the heading's first words>"
DOCS_POINTER = re.compile(r'((?:docs/[\w-]+|SECURITY)\.md)(?:,\s+"([^"]+)")?')


def command_reference():
    spec = importlib.util.spec_from_file_location("command_reference", ROOT / "scripts" / "command_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "SECURITY.md", *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text a reader sees as Markdown: links and headings inside code are not links or headings."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors on its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def test_the_command_reference_is_generated_from_the_commands():
    expected = command_reference().render()
    committed = (DOCS / "commands.md").read_text()
    diff = "".join(difflib.unified_diff(committed.splitlines(True), expected.splitlines(True),
                                        "docs/commands.md (committed)", "docs/commands.md (from the commands)"))
    assert not diff, f"docs/commands.md is stale: run `make docs` and commit it\n{diff}"


def test_the_command_reference_names_every_command_and_every_option_with_its_help():
    reference = command_reference()
    text = (DOCS / "commands.md").read_text()
    for path, command in reference._walk(reference._cli(), (reference.PROG,)):
        assert f"\n## {' '.join(path)}\n" in text, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{' '.join(path)} {param.opts[0]} has no help text"
                assert f"`{param.opts[0]}" in text, f"{' '.join(path)} {param.opts[0]}"


def test_the_command_reference_is_the_same_on_every_run():
    reference = command_reference()
    assert reference.render() == reference.render()


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move detail into docs/"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_anchor_rule_is_githubs():
    assert slug("Scripting: `--json`") == "scripting---json"
    assert slug("Timing: retries, deadlines, and jobs that outlast one invocation") == \
        "timing-retries-deadlines-and-jobs-that-outlast-one-invocation"
    assert slug("At scale: 1x, 10x, 100x") == "at-scale-1x-10x-100x"
    assert slug("backup-cfn local start") == "backup-cfn-local-start"


def test_every_pointer_from_code_into_the_docs_names_a_page_and_heading_that_exist():
    sources = [ROOT / "cli.py", ROOT / "environments.toml", ROOT / ".ci" / "run",
               *sorted((ROOT / "backup_cfn").rglob("*.py")), *sorted((ROOT / "handlers").rglob("*.py")),
               *sorted((ROOT / "scripts").rglob("*.py")), *sorted((ROOT / "tests").rglob("*.py"))]
    broken = []
    for source in sources:
        for page, heading in DOCS_POINTER.findall(source.read_text()):
            if not (ROOT / page).exists():
                broken.append(f"{source.relative_to(ROOT)}: {page} does not exist")
                continue
            heading = " ".join(re.sub(r"\n\s*#", " ", heading).split())  # a comment wrapped over lines
            titles = [" ".join(title.split()) for title in HEADING.findall(FENCE.sub("", (ROOT / page).read_text()))]
            if heading and not any(title.startswith(heading) for title in titles):
                broken.append(f'{source.relative_to(ROOT)}: no heading "{heading}" in {page}')
    assert not broken, "\n".join(broken)


def test_every_test_file_the_docs_name_exists():
    """The docs cite the test that holds each promise: `tests/<layer>/test_x.py`, or `test_x.py::test`
    (test file names are unique across tests/)."""
    names = {path.name for path in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for page in markdown_files():
        text = page.read_text()
        missing += [f"{page.relative_to(ROOT)}: {path}" for path in re.findall(r"tests/[\w/]+\.py", text)
                    if not (ROOT / path).is_file()]
        missing += [f"{page.relative_to(ROOT)}: {name}" for name in re.findall(r"(?<![\w/])test_\w+\.py", text)
                    if name not in names]
    assert not missing, "test files named in the docs that do not exist:\n" + "\n".join(sorted(set(missing)))


def test_every_docs_page_is_in_the_index_exactly_once():
    linked = Counter((INDEX.parent / target.partition("#")[0]).resolve()
                     for target in links(INDEX) if not re.match(r"[a-z]+:", target) and not target.startswith("#"))
    pages = [page for page in sorted(DOCS.glob("*.md")) if page != INDEX]
    wrong = {page.name: linked[page.resolve()] for page in pages if linked[page.resolve()] != 1}
    assert not wrong, f"docs/README.md must link each page once; times linked: {wrong}"


def test_the_readme_links_the_docs_index():
    assert "docs/README.md" in links(ROOT / "README.md")


def test_every_make_target_is_documented():
    targets = HELP_TARGET.findall((ROOT / "Makefile").read_text())
    assert {"demo", "test", "docs"} <= set(targets)
    text = "\n".join(path.read_text() for path in markdown_files())
    missing = [target for target in targets if not re.search(rf"make {re.escape(target)}(?![\w-])", text)]
    assert not missing, f"make targets in the Makefile's help but in no documentation: {missing}"
