"""The contract between the stack and the code that runs in it: bucket prefixes, table keys,
environment variables, outputs, parameters, handler paths, metric names and the timings both
sides rely on. The template (lifecycle rules, IAM scopes, function settings) and the engine read
them from here, so each is named once.

Import-free on purpose: the Lambda package, the template builder and the tests all import it.
"""

CONTENT_PREFIX = "content/"
MANIFEST_PREFIX = "manifests/"
# Continuous protection: each captured batch of one user's changes, one object each (engine/journal.py);
# like every prefix in REPLICATED_PREFIXES it reaches the vault and is locked there.
JOURNAL_PREFIX = "journal/"
# What replication may write into the vault (its bucket policy allows exactly these prefixes).
REPLICATED_PREFIXES = (CONTENT_PREFIX, MANIFEST_PREFIX, JOURNAL_PREFIX)
# S3 bills Standard-IA objects as at least 128 KiB; smaller ones would cost more after transition.
IA_MINIMUM_BILLABLE_BYTES = 128 * 1024
IA_MINIMUM_STORAGE_DAYS = 30
# The garbage collector never deletes content referenced within this many hours (see docs/engine.md).
GC_GRACE_HOURS = 24
# The worker function's timeout, and how often a job is delivered before the dead-letter queue:
# the template sets both, and the engine's leases and claims expire by them.
WORKER_TIMEOUT_SECONDS = 900
JOB_MAX_RECEIVES = 5
# AWS's guidance for SQS event sources: visibility at least six times the function timeout, so a
# message is not redelivered while a throttled or retrying invocation still holds it. Once the
# worker runs, it sets its message's visibility to its own deadline plus the retry delay
# (engine/attempts.py), so a killed attempt is retried minutes later, not after this.
JOB_VISIBILITY_SECONDS = 6 * WORKER_TIMEOUT_SECONDS
# Job messages per worker invocation (the event source mapping's BatchSize): one, so every job has
# a whole invocation's time and no job waits behind another in the same batch.
WORKER_BATCH_SIZE = 1
PRUNER_TIMEOUT_SECONDS = 900
DRILL_TIMEOUT_SECONDS = 900
# The initiator: its timeout, and how often Lambda retries an asynchronous invocation of it that
# failed (EventBridge's schedule and `backup-cfn run` both invoke it asynchronously).
INITIATOR_TIMEOUT_SECONDS = 300
ASYNC_INVOKE_RETRIES = 2
# Retries of a failed job: the delay before delivery n+1 is retry_base * 2^(n-1), capped at
# retry_max, times a random factor in [0.5, 1] (environments.toml may change both).
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 900
# A job split over several invocations (a large user) must finish within this long from its first
# chunk: content it touched stays safe from the collector that long (docs/engine.md, "Garbage
# collection"). A chain older than this starts its listing again.
JOB_MAX_SECONDS = 12 * 3600
# How long SQS keeps a job message, and a dead-lettered one (which an operator may redrive): after
# both, no message about a run exists, and the collector deletes the run's job progress parts.
JOB_MESSAGE_RETENTION_SECONDS = 4 * 24 * 3600
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
# The dead-letter consumer: how many dead-lettered job messages one invocation records.
DEAD_LETTER_BATCH_SIZE = 10
DEAD_LETTER_TIMEOUT_SECONDS = 60
# The dead-letter queue's visibility, by the same guidance as the job queue's: a message the
# consumer could not record yet (a live attempt still holds its job) is looked at again after it.
DEAD_LETTER_VISIBILITY_SECONDS = 6 * DEAD_LETTER_TIMEOUT_SECONDS

# Continuous protection (docs/engine.md, "The journal"). The capture function's timeout, and its
# queue's visibility by AWS's guidance for SQS event sources (six times the timeout).
CAPTURE_TIMEOUT_SECONDS = 300
CAPTURE_VISIBILITY_SECONDS = 6 * CAPTURE_TIMEOUT_SECONDS
# The capture queue's event source mapping: up to this many changes per invocation, gathered for at
# most this long (Lambda's MaximumBatchingWindowInSeconds; a batch over 10 needs a window of >= 1 s).
CAPTURE_BATCH_SIZE = 500
CAPTURE_BATCHING_WINDOW_SECONDS = 5
CAPTURE_MAX_RECEIVES = 5
CAPTURE_MESSAGE_RETENTION_SECONDS = 4 * 24 * 3600
# A change that failed is offered again after this long (its message's visibility), not after the
# queue's 30 minutes: most failures (content being stored by another invocation) pass in seconds.
CAPTURE_RETRY_SECONDS = 30
# The recovery point objective: a change not captured after this long raises the RPO alarm, and the
# nightly reconciliation counts a change older than this that the journal lacks as missed.
RPO_TARGET_SECONDS = 900
# Journal readers start this long before a checkpoint's run time (clock skew between S3's event
# times and the functions' clocks is far below it).
JOURNAL_REPLAY_MARGIN_SECONDS = 300
# A user's changes counted per window of this length for the ransomware-shaped burst alarm.
BURST_WINDOW_SECONDS = 300

# The Lambda target: the newest Python runtime cfn-lint does not flag as deprecated (see
# tests/deploy/test_template_lint.py), on Graviton (about 20% cheaper per GB-second than x86_64). The
# template sets them and the handler package is built for them.
LAMBDA_RUNTIME = "python3.14"
LAMBDA_ARCHITECTURE = "arm64"

# How S3 says an object is not there: HEAD answers a bare 404, GET NoSuchKey, some paths NotFound.
MISSING_OBJECT_CODES = ("404", "NoSuchKey", "NotFound")

# Every boto3 client (engine, operator commands, deploy): standard retry mode backs off on
# throttling (SlowDown, ProvisionedThroughputExceeded) itself.
CLIENT_RETRIES = {"max_attempts": 10, "mode": "standard"}
CLIENT_MAX_POOL_CONNECTIONS = 64
# Per-run and per-user records in the runs table expire this long after the retention period.
RUN_RECORD_EXTRA_DAYS = 30
# Custom CloudWatch metrics the worker publishes (embedded metric format) and the dashboard reads.
METRIC_NAMESPACE = "BackupCfn"
METRIC_DIMENSION = "Stack"
METRIC_RUNS_SUCCEEDED = "RunsSucceeded"
METRIC_USERS_BACKED_UP = "UsersBackedUp"
METRIC_USERS_FAILED = "UsersFailed"
METRIC_JOBS_DEAD_LETTERED = "JobsDeadLettered"
METRIC_BYTES_NEW = "BytesStoredNew"
METRIC_BYTES_DEDUPLICATED = "BytesDeduplicated"
# The restore drill publishes one of these per drill (value 1); the drill alarm watches the first.
METRIC_DRILLS_FAILED = "DrillsFailed"
METRIC_DRILLS_PASSED = "DrillsPassed"
# Continuous protection: changes captured, events that were not a change of a user's file, the
# largest age of a change at capture (event time to protected), users past the burst threshold in
# a batch, and the changes the nightly reconciliation found missing from the journal.
METRIC_CHANGES_CAPTURED = "ChangesCaptured"
METRIC_CAPTURE_EVENTS_IGNORED = "CaptureEventsIgnored"
METRIC_CAPTURE_LATENCY = "CaptureLatencySeconds"
METRIC_USERS_BURSTING = "UsersBursting"
METRIC_CHANGES_MISSED = "ChangesMissed"
# The restore function: users restored and not, and restores closed.
METRIC_USERS_RESTORED = "UsersRestored"
METRIC_RESTORE_USERS_FAILED = "RestoreUsersFailed"
METRIC_RESTORES_COMPLETED = "RestoresCompleted"

# DynamoDB key and attribute names (the template's tables and the engine both use these).
RUNS_PARTITION_KEY = "run_id"
RUNS_SORT_KEY = "item"             # "RUN" for the run record, "USER#<user>" for a user job, "DRILL" for a drill
RUNS_BY_USER_INDEX = "ByUser"      # user -> run_id: a user's history
RUNS_BY_STATUS_INDEX = "ByStatus"  # status -> run_id: what is running or failed (headers only)
# A run's counters are spread over this many tally items, each in its own partition with its users'
# job records (engine/tally.py): per-key write rates a thousand workers cannot exhaust (docs/scale.md).
RUN_TALLY_SHARDS = 64
RUNS_TTL_ATTRIBUTE = "expires_at"
CONTENT_PARTITION_KEY = "content_hash"

# Environment variables the template sets on every function and the handlers read.
ENV_SOURCE_BUCKET = "SOURCE_BUCKET"
ENV_BACKUP_BUCKET = "BACKUP_BUCKET"
ENV_RUNS_TABLE = "RUNS_TABLE"
ENV_CONTENT_TABLE = "CONTENT_TABLE"
ENV_JOB_QUEUE_URL = "JOB_QUEUE_URL"
ENV_TOPIC_ARN = "TOPIC_ARN"
ENV_KEY_ARN = "BACKUP_KEY_ARN"
ENV_RETENTION_DAYS = "RETENTION_DAYS"
ENV_PRIORITY_USERS = "PRIORITY_USERS"  # comma-separated
ENV_STACK_NAME = "STACK_NAME"
# Longer-term retention (0: rule off) and the restore drill's sample size.
ENV_KEEP_WEEKLY = "KEEP_WEEKLY"
ENV_KEEP_MONTHLY = "KEEP_MONTHLY"
ENV_KEEP_YEARLY = "KEEP_YEARLY"
ENV_DRILL_USERS = "DRILL_USERS"
ENV_RETRY_BASE_SECONDS = "RETRY_BASE_SECONDS"
ENV_RETRY_MAX_SECONDS = "RETRY_MAX_SECONDS"
ENV_CAPTURE_QUEUE_URL = "CAPTURE_QUEUE_URL"
ENV_BURST_CHANGES = "BURST_CHANGES"
# The restore function: its queue, the dead-letter queue it also consumes, its sources (JSON name -> bucket).
ENV_RESTORE_QUEUE_URL = "RESTORE_QUEUE_URL"
ENV_RESTORE_DEAD_LETTER_QUEUE_ARN = "RESTORE_DEAD_LETTER_QUEUE_ARN"
ENV_RESTORE_SOURCES = "RESTORE_SOURCES"

# Stack outputs the CLI reads (primary stack, then replica stack).
OUTPUT_BACKUP_BUCKET = "BackupBucketName"
OUTPUT_SOURCE_BUCKET = "SourceBucketName"
OUTPUT_RUNS_TABLE = "RunsTableName"
OUTPUT_CONTENT_TABLE = "ContentIndexTableName"
OUTPUT_JOB_QUEUE_URL = "JobQueueUrl"
OUTPUT_DEAD_LETTER_QUEUE_URL = "JobDeadLetterQueueUrl"
OUTPUT_TOPIC_ARN = "NotificationTopicArn"
OUTPUT_KEY_ARN = "BackupKeyArn"
OUTPUT_INITIATOR = "InitiatorFunctionName"
OUTPUT_WORKER = "WorkerFunctionName"
OUTPUT_PRUNER = "PrunerFunctionName"
OUTPUT_DRILL = "DrillFunctionName"
OUTPUT_DEAD_LETTER_FUNCTION = "DeadLetterFunctionName"
OUTPUT_CAPTURE_FUNCTION = "CaptureFunctionName"
OUTPUT_CAPTURE_QUEUE_URL = "CaptureQueueUrl"
OUTPUT_CAPTURE_DEAD_LETTER_QUEUE_URL = "CaptureDeadLetterQueueUrl"
OUTPUT_RESTORE_QUEUE_URL = "RestoreQueueUrl"
OUTPUT_RESTORE_DEAD_LETTER_QUEUE_URL = "RestoreDeadLetterQueueUrl"
OUTPUT_RESTORE_FUNCTION = "RestoreFunctionName"
OUTPUT_REPLICA_BUCKET = "ReplicaBucketName"
OUTPUT_REPLICA_BUCKET_ARN = "ReplicaBucketArn"
OUTPUT_REPLICA_KEY_ARN = "ReplicaKeyArn"

# Parameters of the primary template: per-build and per-deployment values.
PARAM_CODE_BUCKET = "HandlerCodeBucket"
PARAM_CODE_KEY = "HandlerCodeKey"
PARAM_REPLICA_BUCKET_ARN = "ReplicaBucketArn"
PARAM_REPLICA_KEY_ARN = "ReplicaKeyArn"
# Production only: "false" while the stack is first created (a failed creation must be able to delete
# its tables), "true" from then on (backup_cfn/deploy: StackSpec.first_create).
PARAM_TABLE_DELETION_PROTECTION = "TableDeletionProtection"
# With VPC endpoints: the zone ID of each isolated subnet, chosen by deploy among the zones that host
# every interface endpoint service the stack uses and Lambda (backup_cfn/deploy/zones.py).
PARAM_SUBNET_ZONE_IDS = ("IsolatedSubnet1ZoneId", "IsolatedSubnet2ZoneId")

# The vault (docs/vault.md): stack outputs, the lock and drill functions' environment, metrics.
OUTPUT_VAULT_BUCKET = "VaultBucketName"
OUTPUT_VAULT_BUCKET_ARN = "VaultBucketArn"
OUTPUT_VAULT_KEY_ARN = "VaultKeyArn"
OUTPUT_VAULT_LOCK_TABLE = "VaultLockTableName"
OUTPUT_VAULT_LOCK_FUNCTION = "VaultLockFunctionName"
OUTPUT_VAULT_DRILL_FUNCTION = "VaultDrillFunctionName"
OUTPUT_VAULT_RESTORE_ROLE = "VaultRestoreRoleArn"
ENV_VAULT_BUCKET = "VAULT_BUCKET"
ENV_VAULT_LOCK_TABLE = "VAULT_LOCK_TABLE"
ENV_VAULT_LOCK_MODE = "VAULT_LOCK_MODE"
VAULT_LOCK_KEY = "point"           # the lock table's key: a recovery point's object key
VAULT_LOCK_TTL_ATTRIBUTE = "expires_at"
METRIC_MANIFESTS_ARRIVED = "VaultManifestsArrived"
METRIC_VAULT_LOCKS_SHORT = "VaultLocksShort"
METRIC_VAULT_LOCKS_EXTENDED = "VaultLocksExtended"
# A snapshot reaches the vault within this long of its run (the longest a job may take, 12 h, plus
# replication, minutes with RTC): one that arrives later claims a past it was not part of.
VAULT_MAX_ARRIVAL_HOURS = 48
# The lock extender's step and margin (engine/vault_locks.py): locks end on a 7-day grid, one day
# after the retention rules stop keeping what they hold; a user's newest snapshot stays locked
# at least this many days ahead, renewed daily.
VAULT_LOCK_STEP_DAYS = 7
VAULT_LOCK_MARGIN_DAYS = 1
VAULT_NEWEST_HORIZON_DAYS = 14
VAULT_LOCK_TIMEOUT_SECONDS = 900

# Lambda handler entry points inside the package zip.
HANDLER_INITIATOR = "handlers.initiator.handler"
HANDLER_WORKER = "handlers.worker.handler"
HANDLER_PRUNER = "handlers.pruner.handler"
HANDLER_DRILL = "handlers.drill.handler"
HANDLER_DEAD_LETTER = "handlers.dead_letter.handler"
HANDLER_CAPTURE = "handlers.capture.handler"
HANDLER_VAULT_LOCK = "handlers.vault_lock.handler"
HANDLER_VAULT_DRILL = "handlers.vault_drill.handler"
HANDLER_RESTORER = "handlers.restorer.handler"
# The restore function (many users restored by the stack: engine/restore_jobs.py): its timeout, and
# one job per invocation, as the worker.
RESTORE_TIMEOUT_SECONDS = 900
RESTORE_BATCH_SIZE = 1
