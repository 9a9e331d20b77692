"""The CLI as a shell runs it, for the tests that drive `backup-cfn` end to end."""
from __future__ import annotations

from click.testing import CliRunner

import cli


def run(environments, *args, debug=False):
    """`backup-cfn --environments FILE ARGS...`; with `debug`, `--debug` first and exceptions kept
    on the result. A wide terminal, so that table cells are not folded across lines."""
    arguments = (["--debug"] if debug else []) + ["--environments", str(environments), *args]
    return CliRunner().invoke(cli.cli, arguments, obj={}, catch_exceptions=debug, env={"COLUMNS": "250"})


def one_line_error(result) -> str:
    """The one `Error:` line of a command that failed with exit 1, and no traceback."""
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]
