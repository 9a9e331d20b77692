"""How the operator commands write figures: sizes, counts and shares."""
from __future__ import annotations


def number(value) -> int:
    """A count from a runs-table record (a Decimal, or absent)."""
    return int(value or 0)


def human_bytes(value) -> str:
    value = float(value or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def share(value, total: int) -> str:
    """A size and its share of `total`."""
    value = number(value)
    return f"{human_bytes(value)} ({100 * value / total:.1f}%)" if total else human_bytes(value)
