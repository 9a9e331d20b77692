"""What continuous protection costs a month: S3's events and their rule, the capture queue, the
capture function, and the requests and journal it adds (backup_cfn/engine/capture.py).

- S3 sends its events to EventBridge's default bus at no charge, and EventBridge charges nothing for
  AWS services' events or for a rule matching them: "All state change events published by AWS
  services are free" (https://aws.amazon.com/eventbridge/pricing/); its delivery to SQS is billed by
  SQS as the SendMessage it is.
- SQS (https://aws.amazon.com/sqs/pricing/): per change, EventBridge's SendMessage (an event is
  under 64 KB: one request), and its share of the mapping's ReceiveMessage and DeleteMessageBatch
  (up to 10 messages a request); plus the mapping's long polls while the queue is empty.
- Lambda: one invocation per batch; a batch gathers what arrives in the batching window, so at a
  day's average rate most batches hold one change.
- Per change: a GET of the changed object (a HEAD when S3 keeps its SHA-256), and for new content a
  claim, a copy and a mark, as the nightly run does for a new object; per invocation and user a
  journal segment (PUT) and the burst counter (one write).
The nightly run still lists every user and reconciles; a change captured during the day costs it a
touch instead of a read (not subtracted here: the estimate stays on the safe side).
"""
from __future__ import annotations

import math

from backup_cfn import contract
from backup_cfn.ops.cost.workload import ESM_IDLE_POLLS_PER_MONTH, GIB, REQUEST_SECONDS, WORKER_THREADS, Facts, Workload

CHANGE_HOURS_PER_DAY = 10          # the day's changes arrive over working hours
SEGMENT_BYTES_PER_CHANGE = 200     # a journal change, gzipped (measured: ~150-250 B)
CAPTURE_OVERHEAD_SECONDS = 0.2     # per invocation: start, grouping, the segment and the counter
RECEIVES_PER_BATCH = 1             # a long poll that returns the window's messages (up to 10 each)


def changes_per_day(w: Workload) -> float:
    return w.objects * w.daily_change


def batches_per_day(w: Workload) -> float:
    """Invocations: the window gathers rate x window changes on average, at least one per batch."""
    changes = changes_per_day(w)
    per_second = changes / (CHANGE_HOURS_PER_DAY * 3600)
    per_batch = min(contract.CAPTURE_BATCH_SIZE, max(1.0, per_second * contract.CAPTURE_BATCHING_WINDOW_SECONDS))
    return math.ceil(changes / per_batch)


def continuous_items(facts: Facts, w: Workload, prices, line_item) -> list:
    """The line items of continuous protection, built with the model's LineItem (`line_item`)."""
    m = prices.days_per_month
    changes, batches = changes_per_day(w), batches_per_day(w)
    new_contents = changes * w.unique
    per_batch = changes / batches
    sqs_requests = changes + batches * (RECEIVES_PER_BATCH + math.ceil(per_batch / 10))
    sqs_month = sqs_requests * m + ESM_IDLE_POLLS_PER_MONTH
    gets = changes
    puts = new_contents + batches                 # copies, and one segment per invocation (one user mostly)
    writes = new_contents * 2 + (changes - new_contents) + batches
    seconds = batches * CAPTURE_OVERHEAD_SECONDS + changes * 3 * REQUEST_SECONDS / WORKER_THREADS
    s3, lam, ddb = prices["s3"], prices["lambda"], prices["dynamodb"]
    journal_gb = changes * SEGMENT_BYTES_PER_CHANGE * facts.retention_days / GIB
    return [
        line_item("Continuous: S3 events and EventBridge rule", f"{changes * m:,.0f} events/mo", 0.0),
        line_item("Continuous: SQS (EventBridge sends, mapping polls)", f"{sqs_month:,.0f}/mo",
                  sqs_month / 1e6 * prices["sqs"]["standard_requests_per_million"]),
        line_item("Continuous: capture function (arm64)",
                  f"{batches * m:,.0f} invocations, {seconds * 1.0 * m:,.0f} GB-s",
                  seconds * m * lam["arm64_gb_second"] + batches * m / 1e6 * lam["requests_per_million"]),
        line_item("Continuous: S3 requests (reads, copies, journal)", f"{(gets + puts) * m:,.0f}/mo",
                  (gets * s3["get_head_other_per_1000"] + puts * s3["put_copy_post_list_per_1000"]) * m / 1000),
        line_item("Continuous: DynamoDB (claims, marks, burst counters)", f"{writes * m:,.0f} WRU",
                  writes * m / 1e6 * ddb["write_request_unit_per_million"]),
        line_item("Continuous: journal storage", f"{journal_gb:,.3f} GB-mo", prices.standard_storage(journal_gb) * 2),
    ]
