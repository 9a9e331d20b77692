"""Write docs/commands.md from the click command tree, so the command reference cannot drift from
the commands: every command and subcommand, its usage line, its help text and each option and
argument with its help. `make docs` runs it; tests/test_docs.py fails when the committed file is stale.

The output depends only on the commands' declarations (no terminal width, no environment), so the
same checkout always writes the same bytes."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "commands.md"
PROG = "backup-cfn"

INTRO = f"""\
# Command reference

Generated from the click commands by `make docs` (`scripts/command_reference.py`); do not edit by
hand: `tests/test_docs.py` fails when this file and the commands disagree. `{PROG} COMMAND --help`
prints the same text in the terminal.

Every command takes `-h`/`--help`. Errors are one line on stderr and exit 1 (`--debug`, before
the command, shows the traceback instead); what each command refuses and how is catalogued in
[bad-input.md](bad-input.md). `--json` documents are described in [json.md](json.md); how the
commands are used day to day, in [operating.md](operating.md) and [deploying.md](deploying.md).
"""


def render(root: click.Group | None = None) -> str:
    """The whole reference as Markdown."""
    if root is None:
        root = _cli()
    sections = [INTRO]
    for path, command in _walk(root, (PROG,)):
        sections.append(_section(path, command))
    return "\n".join(sections)


def _cli() -> click.Group:
    sys.path.insert(0, str(ROOT))
    from cli import cli

    return cli


def _walk(command: click.Command, path: tuple[str, ...], parent: click.Context | None = None):
    """(path, command) for the command and everything under it, depth first, subcommands by name."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        for name in sorted(command.list_commands(ctx)):
            yield from _walk(command.get_command(ctx, name), path + (name,), ctx)


def _section(path: tuple[str, ...], command: click.Command) -> str:
    ctx = _context(path, command)
    lines = [f"## {' '.join(path)}", "", "```", f"{' '.join(path)} {' '.join(command.collect_usage_pieces(ctx))}".rstrip(),
             "```", ""]
    if command.help:
        lines += [_prose(_one_paragraph_per_blank_line(command.help)), ""]
    rows = [_row(param, ctx) for param in command.get_params(ctx) if not _is_help(param, ctx)]
    if isinstance(command, click.Group):
        subcommands = sorted(command.list_commands(ctx))
        lines += ["Commands: " + ", ".join(f"[`{name}`](#{_anchor(path + (name,))})" for name in subcommands) + ".", ""]
    if rows:
        lines += ["| option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(lines)


def _context(path: tuple[str, ...], command: click.Command) -> click.Context:
    parent = None
    for name in path[:-1]:
        parent = click.Context(click.Command(name), info_name=name, parent=parent)
    return click.Context(command, info_name=path[-1], parent=parent)


def _row(param: click.Parameter, ctx: click.Context) -> str:
    if isinstance(param, click.Argument):
        name, meaning = f"`{param.make_metavar(ctx)}`", "argument" + (", required" if param.required else "")
    else:
        name, meaning = param.get_help_record(ctx)
        name = ", ".join(f"`{part.strip()}`" for part in name.split(", "))
        name = name.replace("|", "\\|")  # a table cell: even inside a code span, | ends the column
    return f"| {name} | {_prose(_cell(meaning))} |"


def _is_help(param: click.Parameter, ctx: click.Context) -> bool:
    return param is ctx.command.get_help_option(ctx)


def _one_paragraph_per_blank_line(text: str) -> str:
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in paragraph.splitlines()) for paragraph in paragraphs)


def _cell(text: str) -> str:
    return " ".join(text.split())


def _prose(text: str) -> str:
    """Help text as Markdown: outside `code`, <user> would be read as an HTML tag; | ends a table cell anywhere."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        for char in "<>":
            parts[i] = parts[i].replace(char, "\\" + char)
    return "`".join(parts).replace("|", "\\|")


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(path).lower()


def main() -> None:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
