"""The retention rules (engine.retention), as properties over random snapshot histories: the kept set
is the union of the rules' sets, each user's newest and everything inside retention_days are always
kept, each period rule keeps at most one snapshot per period and at most N periods, and a
collection that deletes what a decision expires leaves the next decision unchanged."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from backup_cfn.engine import naming
from backup_cfn.engine.retention import (
    BASE,
    MONTHLY,
    NEWEST,
    PERIOD_RULES,
    WEEKLY,
    WITHIN,
    YEARLY,
    RetentionPolicy,
    decide,
    period_index,
)
from backup_cfn.engine.settings import settings_from_environ

NOW = datetime(2027, 3, 10, 6, 0, tzinfo=timezone.utc)
USERS = ("ann", "ben", "cy")

histories = st.lists(
    st.tuples(st.sampled_from(USERS), st.integers(min_value=0, max_value=3 * 365 * 24)),  # hours before NOW
    min_size=1, max_size=60, unique=True,
).map(lambda picks: [(user, naming.run_id_for(NOW - timedelta(hours=h)), f"manifests/{user}/{h}") for user, h in picks])
policies = st.builds(RetentionPolicy, retention_days=st.integers(1, 120), keep_weekly=st.integers(0, 8),
                     keep_monthly=st.integers(0, 14), keep_yearly=st.integers(0, 3))


def kept_by_rule_reference(snapshots, policy, rule) -> set:
    """The rule on its own, written the plain way."""
    cutoff = naming.run_id_for(NOW - timedelta(days=policy.retention_days))
    kept = set()
    for user in USERS:
        mine = [s for s in snapshots if s[0] == user]
        if not mine:
            continue
        if rule == NEWEST:
            kept.add(max(mine, key=lambda s: s[1]))
        elif rule == WITHIN:
            kept |= {s for s in mine if s[1] >= cutoff}
        elif rule == BASE:
            before = sorted((s for s in mine if s[1] <= cutoff), key=lambda s: s[1])
            kept |= set(before[-1:])
            if len(before) > 1 and naming.run_time(before[-1][1]) > NOW - timedelta(days=policy.retention_days + 1):
                kept.add(before[-2])
        else:
            periods = {}
            for s in mine:
                index = period_index(naming.run_time(s[1]), rule)
                if period_index(NOW, rule) - index < policy.periods(rule):
                    periods.setdefault(index, []).append(s)
            kept |= {max(group, key=lambda s: s[1]) for group in periods.values()}
    return kept


@settings(max_examples=300, deadline=None)
@given(histories, policies)
def test_the_kept_set_is_the_union_of_the_rules_and_the_rest_expires(snapshots, policy):
    decision = decide(snapshots, NOW, policy)
    union = set()
    for rule in policy.active_rules():
        expected = kept_by_rule_reference(snapshots, policy, rule)
        assert set(decision.kept_by(rule)) == expected, rule
        union |= expected
    assert set(decision.kept) == union
    assert set(decision.expired) == set(snapshots) - union
    assert len(decision.kept) + len(decision.expired) == len(snapshots)


@settings(max_examples=300, deadline=None)
@given(histories, policies)
def test_newest_per_user_and_everything_within_retention_days_are_always_kept(snapshots, policy):
    decision = decide(snapshots, NOW, policy)
    cutoff = NOW - timedelta(days=policy.retention_days)
    for user in {s[0] for s in snapshots}:
        assert max((s for s in snapshots if s[0] == user), key=lambda s: s[1]) in decision.kept
    for snapshot in decision.expired:
        assert naming.run_time(snapshot[1]) < cutoff, "a snapshot inside retention_days was expired"


@settings(max_examples=300, deadline=None)
@given(histories, policies)
def test_a_period_rule_keeps_each_periods_newest_for_at_most_n_periods(snapshots, policy):
    decision = decide(snapshots, NOW, policy)
    for rule in PERIOD_RULES:
        for user in USERS:
            kept = [s for s in decision.kept_by(rule) if s[0] == user]
            periods = [period_index(naming.run_time(s[1]), rule) for s in kept]
            assert len(periods) == len(set(periods)) <= policy.periods(rule)
            for snapshot, index in zip(kept, periods):
                same_period = [s for s in snapshots if s[0] == user
                               and period_index(naming.run_time(s[1]), rule) == index]
                assert snapshot == max(same_period, key=lambda s: s[1])


@settings(max_examples=300, deadline=None)
@given(histories, policies, st.integers(0, 400))
def test_collecting_what_a_decision_expires_changes_no_later_decision_at_the_same_time(snapshots, policy, hours):
    """Two collections agree: after the first deletes what it expires, the second keeps everything
    left (and later, nothing expired comes back)."""
    first = decide(snapshots, NOW, policy)
    again = decide(first.kept, NOW, policy)
    assert again.expired == [] and set(again.kept) == set(first.kept)
    later = NOW + timedelta(hours=hours)
    assert set(decide(first.kept, later, policy).kept) == set(decide(snapshots, later, policy).kept)


def test_keep_monthly_twelve_over_a_year_of_daily_snapshots():
    snapshots = [("ann", naming.run_id_for(NOW - timedelta(days=d)), f"k{d}") for d in range(366)]
    decision = decide(snapshots, NOW, RetentionPolicy(60, keep_monthly=12))
    monthly = sorted(s[1] for s in decision.kept_by(MONTHLY))
    # The newest of March 2027 (today) and of each month back to April 2026: the last day of each.
    assert [m[:8] for m in monthly] == ["20260430", "20260531", "20260630", "20260731", "20260831", "20260930",
                                        "20261031", "20261130", "20261231", "20270131", "20270228", "20270310"]
    # 61 days inside retention, the checkpoint before it, and 9 month ends before that.
    assert len(decision.kept) == 61 + 1 + 9
    # k60 ran exactly at the window's start, less than a day before it: k61 is kept too.
    assert decision.kept_by(BASE) == [snapshots[60], snapshots[61]]
    assert len(decision.only_by(MONTHLY)) == 9


def test_an_iso_week_straddles_the_new_year_and_years_are_calendar_years():
    # Thursday 31 December 2026 and Sunday 3 January 2027 are in ISO week 53 of 2026.
    dec31 = datetime(2026, 12, 31, 2, tzinfo=timezone.utc)
    jan3 = datetime(2027, 1, 3, 2, tzinfo=timezone.utc)
    jan4 = datetime(2027, 1, 4, 2, tzinfo=timezone.utc)
    assert period_index(dec31, WEEKLY) == period_index(jan3, WEEKLY) != period_index(jan4, WEEKLY)
    assert period_index(dec31, YEARLY) != period_index(jan3, YEARLY)
    snapshots = [("ann", naming.run_id_for(m), str(m.day)) for m in (dec31, jan3)]
    decision = decide(snapshots, jan4 + timedelta(days=1), RetentionPolicy(1, keep_weekly=2, keep_yearly=2))
    assert decision.reasons[snapshots[1]] == (NEWEST, BASE, WEEKLY, YEARLY)
    assert decision.reasons[snapshots[0]] == (YEARLY,)        # the newest of 2026, not of its week


def test_the_rules_are_off_by_default_and_read_from_the_function_environment():
    policy = RetentionPolicy()
    assert policy.active_rules() == (NEWEST, WITHIN, BASE)
    settings_ = settings_from_environ({"SOURCE_BUCKET": "s", "BACKUP_BUCKET": "b", "RUNS_TABLE": "r",
                                       "CONTENT_TABLE": "c", "RETENTION_DAYS": "30", "KEEP_WEEKLY": "4",
                                       "KEEP_MONTHLY": "12", "KEEP_YEARLY": "3", "DRILL_USERS": "25"})
    assert settings_.retention() == RetentionPolicy(30, 4, 12, 3)
    assert settings_.retention().active_rules() == (NEWEST, WITHIN, BASE, WEEKLY, MONTHLY, YEARLY)
    assert settings_.drill_users == 25
