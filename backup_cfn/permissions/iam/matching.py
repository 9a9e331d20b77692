"""Wildcard patterns and policy variables, shared by every part of a policy.

IAM has one pattern language used in four places (Action, Resource, the
``...Like`` string operators and the ARN operators): ``*`` matches any run of
characters, ``?`` exactly one, and -- in policies with ``"Version":
"2012-10-17"`` -- ``${key}`` is replaced by the single value of a request
context key.  The special variables ``${*}``, ``${?}`` and ``${$}`` stand for
the *literal* characters, so a policy can match a real asterisk.  A variable
may carry a default, ``${aws:PrincipalTag/team, 'company-wide'}``.

Patterns are therefore tokenised once (literal text, ``*``, ``?``, variable)
and rendered per request: substituted values are always escaped, so a value
containing ``*`` can never widen a pattern.  A variable with no value and no
default makes the whole pattern unusable, which IAM documents as "matches
nothing" (for Resource) and "no equal or like value" (for conditions); the
render functions return ``None`` for that case and callers decide.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Wild",
    "Var",
    "Token",
    "VariableLookup",
    "Pattern",
    "tokenize",
    "glob_match",
    "arn_match",
]


class Wild(enum.Enum):
    """A wildcard token: ``*`` (any run, possibly empty) or ``?`` (one character)."""

    STAR = "*"
    QMARK = "?"


@dataclass(frozen=True)
class Var:
    """A policy variable ``${key}`` or ``${key, 'default'}``."""

    key: str
    default: str | None = None


Token = str | Wild | Var

#: Looks up the single value of a context key; ``None`` when the key is absent
#: or multivalued (IAM does not allow multivalued keys as variables).
VariableLookup = Callable[[str], str | None]

_VAR_BODY = re.compile(r"\s*([^,\s][^,]*?)\s*(?:,\s*'([^']*)'\s*)?")


def _no_variables(_key: str) -> str | None:
    return None


def tokenize(text: str, *, variables: bool) -> tuple[Token, ...]:
    """Split a policy string into literal text, wildcards and variables.

    ``variables`` is False for policies without ``"Version": "2012-10-17"``:
    the IAM User Guide says variables are then "treated as literal strings".
    """
    tokens: list[Token] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            tokens.append("".join(buf))
            buf.clear()

    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if variables and c == "$" and text.startswith("${", i):
            end = text.find("}", i + 2)
            if end != -1:
                inner = text[i + 2 : end]
                if inner in ("*", "?", "$"):
                    buf.append(inner)  # literal character, never a wildcard
                    i = end + 1
                    continue
                m = _VAR_BODY.fullmatch(inner)
                if m:
                    flush()
                    tokens.append(Var(m.group(1), m.group(2)))
                    i = end + 1
                    continue
        if c == "*":
            flush()
            tokens.append(Wild.STAR)
        elif c == "?":
            flush()
            tokens.append(Wild.QMARK)
        else:
            buf.append(c)
        i += 1
    flush()
    return tuple(tokens)


def _regex_body(tokens: Sequence[Token], lookup: VariableLookup) -> str | None:
    parts: list[str] = []
    for t in tokens:
        if isinstance(t, str):
            parts.append(re.escape(t))
        elif t is Wild.STAR:
            parts.append(".*")
        elif t is Wild.QMARK:
            parts.append(".")
        else:
            assert isinstance(t, Var)
            value = lookup(t.key)
            if value is None:
                value = t.default
            if value is None:
                return None
            parts.append(re.escape(value))
    return "".join(parts)


@lru_cache(maxsize=4096)
def _compile(body: str, ignore_case: bool) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(body, flags)


class Pattern:
    """A tokenised policy string that can be matched or rendered per request.

    Variable-free patterns (the common case) compile once and are cached.
    """

    __slots__ = ("text", "tokens", "has_variables", "_static")

    def __init__(self, text: str, *, variables: bool = True) -> None:
        self.text = text
        self.tokens = tokenize(text, variables=variables)
        self.has_variables = any(isinstance(t, Var) for t in self.tokens)
        # Compiled regexes of a variable-free pattern, keyed by ignore_case.
        self._static: dict[bool, re.Pattern[str]] = {}

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"

    def regex(self, lookup: VariableLookup = _no_variables, *, ignore_case: bool = False) -> re.Pattern[str] | None:
        """The compiled regex for this pattern, or ``None`` if a variable has no value."""
        if not self.has_variables:
            rx = self._static.get(ignore_case)
            if rx is None:
                body = _regex_body(self.tokens, lookup)
                assert body is not None
                rx = self._static[ignore_case] = _compile(body, ignore_case)
            return rx
        body = _regex_body(self.tokens, lookup)
        if body is None:
            return None
        return _compile(body, ignore_case)

    def matches(self, value: str, lookup: VariableLookup = _no_variables, *, ignore_case: bool = False) -> bool:
        """Whole-string wildcard match; an unresolvable variable matches nothing."""
        rx = self.regex(lookup, ignore_case=ignore_case)
        return rx is not None and rx.fullmatch(value) is not None

    def render(self, lookup: VariableLookup = _no_variables) -> str | None:
        """The literal string (for equality operators: ``*`` and ``?`` stay literal)."""
        parts: list[str] = []
        for t in self.tokens:
            if isinstance(t, str):
                parts.append(t)
            elif isinstance(t, Wild):
                parts.append(t.value)
            else:
                value = lookup(t.key)
                if value is None:
                    value = t.default
                if value is None:
                    return None
                parts.append(value)
        return "".join(parts)

    def arn_segments(self) -> list[tuple[Token, ...]] | None:
        """Split on the first five literal colons (never inside a variable).

        Returns ``None`` when the pattern does not have the six ARN parts.
        """
        segments: list[list[Token]] = [[]]
        for t in self.tokens:
            if isinstance(t, str) and len(segments) < 6 and ":" in t:
                pieces = t.split(":")
                for j, piece in enumerate(pieces):
                    if j > 0:
                        if len(segments) < 6:
                            segments.append([])
                        else:
                            segments[-1].append(":")
                    if piece:
                        segments[-1].append(piece)
            else:
                segments[-1].append(t)
        if len(segments) < 6:
            return None
        return [tuple(s) for s in segments]

    def arn_matches(self, value: str, lookup: VariableLookup = _no_variables) -> bool:
        """ARN operator semantics: each of the six colon-delimited parts matches separately.

        The IAM User Guide (condition operators, ARN section) gives the
        example that ``arn:aws:someservice:*:111122223333:finance/*`` does
        *not* ArnLike-match a value whose region part would need the ``*`` to
        swallow colons, although StringLike matches it.  The sixth part (the
        resource) keeps its own colons, so ``log-group:x:*`` works.  A pattern
        with fewer than six parts matches nothing, except a bare ``*`` which
        matches everything: AWS documents no other case, and refusing to match
        keeps an Allow from looking broader than it may be.
        """
        segs = self.arn_segments()
        if segs is None:
            return self.tokens == (Wild.STAR,)
        parts = value.split(":", 5)
        if len(parts) != 6:
            return False
        for seg_tokens, part in zip(segs, parts, strict=True):
            body = _regex_body(seg_tokens, lookup)
            if body is None or _compile(body, False).fullmatch(part) is None:
                return False
        return True


@lru_cache(maxsize=8192)
def _pattern(text: str, variables: bool) -> Pattern:
    return Pattern(text, variables=variables)


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Plain IAM wildcard match of ``value`` against ``pattern`` (no variables)."""
    return _pattern(pattern, False).matches(value, ignore_case=ignore_case)


def arn_match(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals match of ``value`` against ``pattern`` (no variables)."""
    return _pattern(pattern, False).arn_matches(value)


def cached_pattern(text: str, *, variables: bool) -> Pattern:
    """A shared, cached :class:`Pattern` (patterns are immutable)."""
    return _pattern(text, variables)
