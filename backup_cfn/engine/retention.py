"""Which snapshots the garbage collector keeps: like restic's `forget` policies, a union of rules.

- `newest`: each user's newest snapshot, whatever its age (a user who stopped changing files, or
  whose folder is gone, stays restorable);
- `within`: every snapshot taken in the last `retention_days`;
- `base`: the newest snapshot at or before the window's start, and the one before it when the newest
  ran less than a day before the start (its job may have finished after it): the checkpoint a
  point-in-time restore at the window's first minute replays the journal from;
- `weekly` / `monthly` / `yearly` (optional, 0 = off): the newest snapshot of each of the last
  `keep_weekly` ISO weeks, `keep_monthly` calendar months, `keep_yearly` calendar years, counted in
  calendar periods back from now (the current period is the first), per user.

Every rule only adds to the kept set, so the collector's safety argument (docs/engine.md) holds as
it did with the first two rules alone. The `base` rule agrees with itself over time too: the newest
snapshot before a later window's start was, at any earlier collection, inside that window or the
newest before its start (and likewise the one before it). The newest snapshot of a period that has ended never
changes (later snapshots fall in later periods) and is itself kept, so deleting what a decision
expires leaves the same decision next time: collections agree with each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backup_cfn.engine import naming

NEWEST, WITHIN, BASE, WEEKLY, MONTHLY, YEARLY = "newest", "within", "base", "weekly", "monthly", "yearly"
PERIOD_RULES = (WEEKLY, MONTHLY, YEARLY)
RULES = (NEWEST, WITHIN, BASE, *PERIOD_RULES)
# A nightly job ends well within a day of its run (docs/engine.md, "Timing": 94 minutes at worst, a
# chain restarts after 12 hours): a snapshot whose run is older than this was written by then.
SNAPSHOT_WRITTEN_WITHIN = timedelta(days=1)

Snapshot = tuple[str, str, str]   # (user, run_id, manifest key), as manifest.list_manifests gives them


@dataclass(frozen=True)
class RetentionPolicy:
    retention_days: int = 60
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0

    def periods(self, rule: str) -> int:
        return {WEEKLY: self.keep_weekly, MONTHLY: self.keep_monthly, YEARLY: self.keep_yearly}[rule]

    def active_rules(self) -> tuple[str, ...]:
        return (NEWEST, WITHIN, BASE) + tuple(rule for rule in PERIOD_RULES if self.periods(rule) > 0)

    def describe(self, rule: str) -> str:
        """The rule as an operator reads it in `prune --dry-run`."""
        if rule == NEWEST:
            return "each user's newest snapshot"
        if rule == WITHIN:
            return f"every snapshot of the last {self.retention_days} days"
        if rule == BASE:
            return "the checkpoint before the window, for point-in-time restores at its first minute"
        unit = {WEEKLY: "ISO week", MONTHLY: "month", YEARLY: "year"}[rule]
        return f"the newest of each of the last {self.periods(rule)} {unit}s (keep_{rule})"


def period_index(moment: datetime, rule: str) -> int:
    """A number that grows by one from each period to the next: ISO weeks (Monday to Sunday, so a
    week can straddle a new year), calendar months, calendar years."""
    if rule == WEEKLY:
        monday = moment.date() - timedelta(days=moment.isoweekday() - 1)
        return monday.toordinal() // 7
    if rule == MONTHLY:
        return moment.year * 12 + moment.month - 1
    if rule == YEARLY:
        return moment.year
    raise ValueError(f"not a period rule: {rule!r}")


@dataclass
class Decision:
    """The snapshots kept (each with the rules that keep it) and the ones that expire."""
    policy: RetentionPolicy
    kept: list[Snapshot] = field(default_factory=list)
    expired: list[Snapshot] = field(default_factory=list)
    reasons: dict[Snapshot, tuple[str, ...]] = field(default_factory=dict)

    def kept_by(self, rule: str) -> list[Snapshot]:
        return [s for s in self.kept if rule in self.reasons[s]]

    def only_by(self, rule: str) -> list[Snapshot]:
        """Kept by this rule and no other: what turning the rule off would delete."""
        return [s for s in self.kept if self.reasons[s] == (rule,)]


def base_of_window(user_snapshots: list[Snapshot], window_start: datetime) -> list[Snapshot]:
    """One user's checkpoints before the window (the `base` rule): the newest at or before its
    start, and the one before that when the newest may have been written after the start."""
    before = sorted((s for s in user_snapshots if s[1] <= naming.run_id_for(window_start)), key=lambda s: s[1])
    if not before:
        return []
    newest = before[-1]
    if len(before) > 1 and naming.run_time(newest[1]) > window_start - SNAPSHOT_WRITTEN_WITHIN:
        return before[-2:]
    return [newest]


def decide(snapshots: list[Snapshot], now: datetime, policy: RetentionPolicy) -> Decision:
    """Apply every rule to every user's snapshots; `kept` and `expired` keep the input order."""
    window_start = now - timedelta(days=policy.retention_days)
    cutoff = naming.run_id_for(window_start)
    by_user: dict[str, list[Snapshot]] = {}
    for snapshot in snapshots:
        by_user.setdefault(snapshot[0], []).append(snapshot)
    reasons: dict[Snapshot, list[str]] = {}
    for user_snapshots in by_user.values():
        newest = max(user_snapshots, key=lambda s: s[1])
        reasons.setdefault(newest, []).append(NEWEST)
        for snapshot in user_snapshots:
            if snapshot[1] >= cutoff:
                reasons.setdefault(snapshot, []).append(WITHIN)
        for snapshot in base_of_window(user_snapshots, window_start):
            reasons.setdefault(snapshot, []).append(BASE)
        for rule in PERIOD_RULES:
            count = policy.periods(rule)
            if count <= 0:
                continue
            current = period_index(now, rule)
            newest_of_period: dict[int, Snapshot] = {}
            for snapshot in user_snapshots:
                index = period_index(naming.run_time(snapshot[1]), rule)
                if current - index < count:
                    best = newest_of_period.get(index)
                    if best is None or snapshot[1] > best[1]:
                        newest_of_period[index] = snapshot
            for snapshot in newest_of_period.values():
                reasons.setdefault(snapshot, []).append(rule)
    decision = Decision(policy)
    for snapshot in snapshots:
        if snapshot in reasons:
            decision.kept.append(snapshot)
            decision.reasons[snapshot] = tuple(r for r in RULES if r in reasons[snapshot])
        else:
            decision.expired.append(snapshot)
    return decision
