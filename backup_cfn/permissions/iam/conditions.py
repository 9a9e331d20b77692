"""The IAM ``Condition`` element: request context, operators and their evaluation.

Semantics implemented (each from the IAM User Guide, quoted in the tests):

* Condition key *names* are case-insensitive; values depend on the operator.
* Several operators, or several keys under one operator: logical AND.
  Several policy values for one key: logical OR -- except for negated
  operators (``StringNotEquals``, ``ArnNotLike``, ``NotIpAddress`` ...), where
  they combine as NOR ("returns true only if all values evaluate to false").
* A key missing from the request context makes a positive operator false and a
  negated operator true.  ``...IfExists`` (allowed on every operator except
  ``Null``) makes a missing key true.  ``Null`` tests presence itself.
* ``ForAllValues:`` is true when every request value matches at least one
  policy value, and also when the key is missing or its value set is empty.
  ``ForAnyValue:`` is true when some request value matches some policy value,
  and false when the key is missing or empty.  With a negated operator the
  negation applies per request value ("ForAllValues:StringNotLike key1*" means
  *no* request value starts with key1) -- this is what AWS's documented result
  tables for ``ForAllValues:StringNotLike`` require.
* A multivalued request key used *without* a set operator is evaluated as
  "some request value matches" for positive operators and as its negation for
  negated operators (the NOR rule extended to request values).  AWS says such
  keys "require a condition set operator" and documents no result, so this is
  a modelling choice, reported in :mod:`iameval` docs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .matching import Pattern, VariableLookup

__all__ = [
    "ContextValue",
    "Context",
    "Operator",
    "ConditionClause",
    "ConditionBlock",
    "ConditionResult",
    "PolicyError",
    "parse_operator",
    "parse_condition_block",
    "evaluate_condition",
]


class PolicyError(ValueError):
    """A policy document that AWS would reject (or that still holds unresolved intrinsics)."""


ContextScalar = str | bool | int | float | Decimal | datetime | date | bytes
#: What callers may put in a request context: a scalar, a sequence of scalars
#: (a multivalued key; an empty sequence is the documented "null data set"),
#: or None (treated as absent).
ContextValue = ContextScalar | Sequence[ContextScalar] | None


def _scalar_to_str(v: ContextScalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    return str(v)


class Context:
    """A request context: case-insensitive keys, each with a tuple of string values.

    A key maps to ``None`` (absent), ``()`` (present with the null data set)
    or a tuple of values.  Scalars are normalised to the strings IAM compares:
    booleans become ``"true"``/``"false"``, datetimes ISO 8601, bytes base64.
    """

    __slots__ = ("_values", "_names")

    def __init__(self, values: Mapping[str, ContextValue] | None = None) -> None:
        self._values: dict[str, tuple[str, ...]] = {}
        self._names: dict[str, str] = {}
        if values:
            self.update(values)

    def update(self, values: Mapping[str, ContextValue]) -> None:
        """Add or replace keys (later values win, as for an explicit request context)."""
        for name, value in values.items():
            folded = name.lower()
            if value is None:
                self._values.pop(folded, None)
                self._names.pop(folded, None)
                continue
            if isinstance(value, (str, bytes, bool, int, float, Decimal, datetime, date)):
                normalised: tuple[str, ...] = (_scalar_to_str(value),)
            else:
                normalised = tuple(_scalar_to_str(v) for v in value)
            self._values[folded] = normalised
            self._names[folded] = name

    def copy(self) -> Context:
        other = Context()
        other._values = dict(self._values)
        other._names = dict(self._names)
        return other

    def get(self, key: str) -> tuple[str, ...] | None:
        """All values of ``key``, ``None`` if absent."""
        return self._values.get(key.lower())

    def single(self, key: str) -> str | None:
        """The value of a single-valued key (for policy variables), else ``None``."""
        values = self._values.get(key.lower())
        if values is None or len(values) != 1:
            return None
        return values[0]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        return {self._names[k]: v for k, v in self._values.items()}

    def __repr__(self) -> str:
        return f"Context({self.as_dict()!r})"


# --------------------------------------------------------------------------
# Operators


@dataclass(frozen=True)
class _Base:
    name: str
    category: str  # String, Numeric, Date, Bool, Binary, Ip, Arn, Null
    negated: bool
    positive: str  # the name of the positive counterpart's comparison


_BASES: dict[str, _Base] = {}


def _base(name: str, category: str, positive: str, negated: bool = False) -> None:
    _BASES[name.lower()] = _Base(name, category, negated, positive)


for _n, _pos, _neg in [
    ("StringEquals", "eq", False),
    ("StringNotEquals", "eq", True),
    ("StringEqualsIgnoreCase", "eq_ci", False),
    ("StringNotEqualsIgnoreCase", "eq_ci", True),
    ("StringLike", "like", False),
    ("StringNotLike", "like", True),
]:
    _base(_n, "String", _pos, _neg)
for _cat in ("Numeric", "Date"):
    for _suffix, _pos, _neg in [
        ("Equals", "eq", False),
        ("NotEquals", "eq", True),
        ("LessThan", "lt", False),
        ("LessThanEquals", "le", False),
        ("GreaterThan", "gt", False),
        ("GreaterThanEquals", "ge", False),
    ]:
        _base(_cat + _suffix, _cat, _pos, _neg)
_base("Bool", "Bool", "eq")
_base("BinaryEquals", "Binary", "eq")
_base("IpAddress", "Ip", "in")
_base("NotIpAddress", "Ip", "in", True)
# ArnEquals and ArnLike "behave identically" (IAM User Guide).
_base("ArnEquals", "Arn", "like")
_base("ArnLike", "Arn", "like")
_base("ArnNotEquals", "Arn", "like", True)
_base("ArnNotLike", "Arn", "like", True)
_base("Null", "Null", "null")

_SET_OPS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}


@dataclass(frozen=True)
class Operator:
    """A parsed condition operator such as ``ForAllValues:StringNotLikeIfExists``."""

    text: str
    base: str
    category: str
    negated: bool
    comparison: str
    set_operator: str | None  # "ForAnyValue" | "ForAllValues" | None
    if_exists: bool

    def __str__(self) -> str:
        return self.text


def parse_operator(text: str) -> Operator:
    """Parse an operator name; unknown names raise :class:`PolicyError` (AWS rejects them)."""
    set_op: str | None = None
    rest = text
    if ":" in text:
        prefix, rest = text.split(":", 1)
        set_op = _SET_OPS.get(prefix.lower())
        if set_op is None:
            raise PolicyError(f"unknown condition set operator {prefix!r} in {text!r}")
    if_exists = False
    base = _BASES.get(rest.lower())
    if base is None and rest.lower().endswith("ifexists"):
        base = _BASES.get(rest[: -len("IfExists")].lower())
        if_exists = True
    if base is None:
        raise PolicyError(f"unknown condition operator {text!r}")
    if base.name == "Null" and (if_exists or set_op):
        raise PolicyError(f"{text!r}: Null takes neither IfExists nor a set operator")
    return Operator(text, base.name, base.category, base.negated, base.positive, set_op, if_exists)


# --------------------------------------------------------------------------
# Values


def _parse_bool(s: str) -> bool | None:
    low = s.strip().lower()
    if low == "true":
        return True
    if low == "false":
        return False
    return None


def _parse_decimal(s: str) -> Decimal | None:
    try:
        d = Decimal(s.strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


_EPOCH = re.compile(r"[+-]?\d+(\.\d+)?")


def _parse_date(s: str) -> datetime | None:
    """ISO 8601 (W3C profile) or epoch seconds, as the IAM date operators accept."""
    text = s.strip()
    if _EPOCH.fullmatch(text):
        return datetime.fromtimestamp(float(text), tz=UTC)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _parse_network(s: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(s.strip(), strict=False)
    except ValueError:
        return None


def _parse_address(s: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    # A context value may itself be written as CIDR; treat it as a network and
    # require it to lie inside the policy range.
    return _parse_network(s)


def _parse_binary(s: str) -> bytes | None:
    try:
        return base64.b64decode(s.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _policy_value_to_str(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, Decimal)):
        return str(v)
    if isinstance(v, str):
        return v
    raise PolicyError(f"{where}: condition value {v!r} is not a string, number or boolean (unresolved intrinsic?)")


# --------------------------------------------------------------------------
# Clauses


@dataclass(frozen=True)
class ConditionClause:
    """One ``operator: {key: values}`` test, values already validated for the operator."""

    operator: Operator
    key: str
    values: tuple[str, ...]
    patterns: tuple[Pattern, ...]
    parsed: tuple[Any, ...]

    def describe(self) -> str:
        vals = self.values[0] if len(self.values) == 1 else list(self.values)
        return f"{self.operator.text} {self.key} {vals!r}"

    def evaluate(self, context: Context, *, variables: bool = True) -> bool:
        """Evaluate against ``context``; ``variables`` is the policy's Version allowing ``${...}``."""
        op = self.operator
        present = context.get(self.key)
        if op.category == "Null":
            is_null = present is None or len(present) == 0
            return any(is_null == expected for expected in self.parsed)

        lookup: VariableLookup = context.single if variables else _no_lookup
        matches_any = self._matcher(lookup)

        if op.set_operator is None:
            if not present:
                return True if op.if_exists else op.negated
            hit = any(matches_any(v) for v in present)
            return (not hit) if op.negated else hit

        def per_value(v: str) -> bool:
            return not matches_any(v) if op.negated else matches_any(v)

        if op.set_operator == "ForAllValues":
            if not present:
                return True
            return all(per_value(v) for v in present)
        # ForAnyValue
        if not present:
            return op.if_exists
        return any(per_value(v) for v in present)

    def _matcher(self, lookup: VariableLookup) -> Callable[[str], bool]:
        """``request value -> does it match any policy value (positive comparison)``."""
        op = self.operator
        cat = op.category
        cmp = op.comparison
        if cat == "String":
            if cmp == "like":
                regexes = [p.regex(lookup) for p in self.patterns]
                live = [r for r in regexes if r is not None]
                return lambda v: any(r.fullmatch(v) is not None for r in live)
            rendered = [p.render(lookup) for p in self.patterns]
            if cmp == "eq_ci":
                folded = {r.casefold() for r in rendered if r is not None}
                return lambda v: v.casefold() in folded
            exact = {r for r in rendered if r is not None}
            return lambda v: v in exact
        if cat == "Arn":
            pats = self.patterns
            return lambda v: any(p.arn_matches(v, lookup) for p in pats)
        if cat == "Numeric":
            nums: tuple[Decimal, ...] = self.parsed
            return lambda v: _compare(_parse_decimal(v), nums, cmp)
        if cat == "Date":
            dates: tuple[datetime, ...] = self.parsed
            return lambda v: _compare(_parse_date(v), dates, cmp)
        if cat == "Bool":
            bools: tuple[bool, ...] = self.parsed
            return lambda v: _parse_bool(v) is not None and _parse_bool(v) in bools
        if cat == "Binary":
            blobs: tuple[bytes, ...] = self.parsed
            return lambda v: _parse_binary(v) in blobs
        if cat == "Ip":
            nets = self.parsed
            return lambda v: _ip_in(_parse_address(v), nets)
        raise AssertionError(cat)  # pragma: no cover


def _no_lookup(_key: str) -> str | None:
    return None


def _compare(value: Any, policy_values: Iterable[Any], cmp: str) -> bool:
    if value is None:
        return False
    for p in policy_values:
        if cmp == "eq" and value == p:
            return True
        if cmp == "lt" and value < p:
            return True
        if cmp == "le" and value <= p:
            return True
        if cmp == "gt" and value > p:
            return True
        if cmp == "ge" and value >= p:
            return True
    return False


def _ip_in(addr: Any, nets: Iterable[Any]) -> bool:
    if addr is None:
        return False
    return any(addr.version == net.version and addr.subnet_of(net) for net in nets)


def _make_clause(op: Operator, key: str, raw_values: Any, variables: bool, where: str) -> ConditionClause:
    raw_list = raw_values if isinstance(raw_values, list) else [raw_values]
    values = tuple(_policy_value_to_str(v, where) for v in raw_list)
    if not values:
        raise PolicyError(f"{where}: {op.text} {key} has no values")
    patterns: tuple[Pattern, ...] = ()
    parsed: tuple[Any, ...] = ()
    cat = op.category
    if cat in ("String", "Arn"):
        patterns = tuple(Pattern(v, variables=variables) for v in values)
    else:
        parser: Callable[[str], Any] = {
            "Numeric": _parse_decimal,
            "Date": _parse_date,
            "Bool": _parse_bool,
            "Binary": _parse_binary,
            "Ip": _parse_network,
            "Null": _parse_bool,
        }[cat]
        out = []
        for v in values:
            p = parser(v)
            if p is None:
                raise PolicyError(f"{where}: {op.text} value {v!r} is not a valid {cat} value")
            out.append(p)
        parsed = tuple(out)
    return ConditionClause(op, key, values, patterns, parsed)


@dataclass(frozen=True)
class ConditionResult:
    """Outcome of a condition block; ``failed`` names the first clause that was false."""

    ok: bool
    failed: ConditionClause | None = None


@dataclass(frozen=True)
class ConditionBlock:
    """A whole ``Condition`` element: every clause must hold (logical AND)."""

    clauses: tuple[ConditionClause, ...] = ()

    def evaluate(self, context: Context, *, variables: bool = True) -> ConditionResult:
        for clause in self.clauses:
            if not clause.evaluate(context, variables=variables):
                return ConditionResult(False, clause)
        return ConditionResult(True)

    def __bool__(self) -> bool:
        return bool(self.clauses)


def parse_condition_block(raw: Any, *, variables: bool = True, where: str = "Condition") -> ConditionBlock:
    """Parse and validate a ``Condition`` element (``{operator: {key: value(s)}}``)."""
    if raw is None:
        return ConditionBlock()
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: Condition must be an object, got {raw!r}")
    clauses: list[ConditionClause] = []
    for op_text, keys in raw.items():
        if not isinstance(op_text, str):
            raise PolicyError(f"{where}: operator {op_text!r} is not a string")
        op = parse_operator(op_text)
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"{where}: {op_text} must map condition keys to values, got {keys!r}")
        for key, values in keys.items():
            if not isinstance(key, str):
                raise PolicyError(f"{where}: condition key {key!r} is not a string (unresolved intrinsic?)")
            clauses.append(_make_clause(op, key, values, variables, where))
    return ConditionBlock(tuple(clauses))


def evaluate_condition(
    operator: str,
    key: str,
    policy_values: Any,
    context: Context | Mapping[str, ContextValue] | None = None,
    *,
    variables: bool = True,
) -> bool:
    """Evaluate a single condition test -- a convenience for tests and exploration.

    >>> evaluate_condition("StringLike", "s3:prefix", "home/*", {"s3:prefix": "home/x"})
    True
    """
    ctx = context if isinstance(context, Context) else Context(context or {})
    clause = _make_clause(parse_operator(operator), key, policy_values, variables, "condition")
    return clause.evaluate(ctx, variables=variables)
