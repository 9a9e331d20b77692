"""How a value reads in the review: compact, one line, long ones folded."""
from __future__ import annotations

from backup_cfn.deploy.review.model import ABSENT, UNKNOWN

FOLD = 120   # characters of a value shown in the console; the JSON document keeps every value whole


def compact(value) -> str:
    """A value on one line: strings bare, references as {Ref: X} / {GetAtt: X.Arn}, a Fn::Sub that
    kept references as its string (arn:aws:s3:::${BackupBucket}/content/*)."""
    if value is ABSENT:
        return "(none)"
    if value is UNKNOWN:
        return "(known after deploy)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict):
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return f"{{Ref: {argument}}}"
            if key == "Fn::GetAtt":
                return f"{{GetAtt: {'.'.join(argument) if isinstance(argument, list) else argument}}}"
            if key == "Fn::Sub" and isinstance(argument, str):
                return argument
            if key.startswith("Fn::"):
                return f"{{{key[4:]}: {compact(argument)}}}"
        return "{" + ", ".join(f"{k}: {compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return str(value)


def fold(text: str, width: int = FOLD) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def map_leaves(value, leaf):
    """The value with `leaf` applied to every scalar (and marker) inside it."""
    if isinstance(value, dict):
        return {k: map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [map_leaves(v, leaf) for v in value]
    return leaf(value)


def jsonable(value):
    """A value for the JSON document (the markers become None and a flag beside it)."""
    return map_leaves(value, lambda v: None if v is ABSENT or v is UNKNOWN else v)
