"""How the reading commands write, for people and for scripts.

`--json`: one versioned JSON document on stdout and nothing else. Progress goes to stderr, and an
error is the usual one line on stderr with a non-zero exit. Every document starts with
`"schema": "backup-cfn/<name>"` and `"version"`; docs/json.md lists each one's keys, and the version
changes only when a key is removed or changes meaning (new keys may appear within a version).

Tables: on a terminal rich fits them to the window; anywhere else (a pipe, a file, CI) they are
printed as wide as their content, so an identifier (a run ID, a user, a path) is never cut.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime
from decimal import Decimal

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

JSON_VERSION = 1
SCHEMA_PREFIX = "backup-cfn/"
UNBOUNDED = 1_000_000


def plain(value):
    """A value as JSON has it: DynamoDB's Decimals as numbers, tuples and sets as lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def json_document(schema: str, body: dict) -> dict:
    return {"schema": SCHEMA_PREFIX + schema, "version": JSON_VERSION, **plain(body)}


def print_json(schema: str, body: dict) -> dict:
    """Write the document to stdout (and nothing else); returns it."""
    document = json_document(schema, body)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return document


def side_console(console: Console, as_json: bool) -> Console:
    """Where progress and messages go: the command's console, or stderr when stdout is for JSON."""
    return Console(stderr=True, highlight=False) if as_json else console


def print_table(console: Console, table: Table) -> None:
    """Print a table; off a terminal, at least as wide as its content so nothing in it is cut."""
    if console.is_terminal:
        console.print(table)
        return
    needed = Measurement.get(console, console.options.update(width=UNBOUNDED), table).maximum
    saved = console.width
    console.width = max(saved, needed)
    try:
        console.print(table, crop=False)
    finally:
        console.width = saved


def print_line(console: Console, text: str) -> None:
    """One line, never wrapped or cut (paths and IDs stay whole for grep)."""
    console.print(text, soft_wrap=True, highlight=False, markup=False)
