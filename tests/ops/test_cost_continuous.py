"""`backup-cfn cost` counts continuous protection: S3's events and the rule (free), the capture
queue's requests, the capture function, its S3 and DynamoDB requests and the journal
(backup_cfn/ops/cost/continuous.py)."""
from __future__ import annotations

from backup_cfn.config import load_environment
from backup_cfn.ops.cost.continuous import batches_per_day, changes_per_day
from backup_cfn.ops.cost.model import estimate
from backup_cfn.ops.cost.workload import ESM_IDLE_POLLS_PER_MONTH, Workload


def continuous(items) -> dict:
    return {i.component.removeprefix("Continuous: "): i for i in items if i.component.startswith("Continuous: ")}


def test_each_change_is_an_event_a_queue_send_and_a_read_and_the_events_themselves_are_free():
    workload = Workload()
    result = estimate(load_environment("prod"), workload)
    ours = continuous(result.scenarios[0].items)
    month = result.prices.days_per_month
    assert ours["S3 events and EventBridge rule"].usd == 0.0
    sqs_requests = float(ours["SQS (EventBridge sends, mapping polls)"].quantity.split("/")[0].replace(",", ""))
    assert sqs_requests >= changes_per_day(workload) * month + ESM_IDLE_POLLS_PER_MONTH
    assert 0 < result.scenarios[0].usd("Continuous: capture function (arm64)") < 5
    # The other designs have no continuous protection to pay for.
    assert not continuous(result.scenarios[1].items) and not continuous(result.scenarios[2].items)


def test_the_cost_grows_with_the_changes_and_batches_fill_as_the_rate_rises():
    env = load_environment("prod")
    calm, busy = Workload(daily_change=0.01), Workload(daily_change=0.2, objects=2_000_000, users=10_000)
    assert batches_per_day(calm) == changes_per_day(calm)            # ~2,000 changes over 10 hours: one a batch
    assert batches_per_day(busy) < changes_per_day(busy) / 10       # 400,000 a day: the window fills batches
    cost = lambda w: sum(i.usd for i in continuous(estimate(env, w).scenarios[0].items).values())  # noqa: E731
    assert cost(busy) > 10 * cost(calm)
