"""What the restore function may do, and what the operator needs to start and follow a restore the
stack runs (engine/restore_jobs.py, docs/permissions.md). The runs-table writes of both are held to
restore records by their partition key (`dynamodb:LeadingKeys`): neither can touch a backup run's."""
from __future__ import annotations

from dataclasses import dataclass

from awacs import dynamodb as ddb, kms as kms_actions, s3 as s3_actions, sns as sns_actions, sqs as sqs_actions
from awacs.aws import Allow, ForAllValuesStringLike, Statement
from troposphere import GetAtt, Ref

from backup_cfn import contract
from backup_cfn.stack.policies.elements import all_of, objects_in, s3_reading_a_copy_source_in, via
from backup_cfn.stack.policies.roles import bucket_key_context, key_use_statement

# Restore IDs are "R" and a time (engine/restore_jobs.py); run IDs start with a digit.
RESTORE_KEYS = "R*"


@dataclass(frozen=True)
class RestoreSource:
    """A bucket the restore function reads snapshots and content from (issue 19's vault: one more), and
    its Region ("${AWS::Region}": this stack's)."""
    name: str
    bucket_arn: object
    key_arn: object
    region: str


def restore_records_only() -> ForAllValuesStringLike:
    return ForAllValuesStringLike("dynamodb:LeadingKeys", [RESTORE_KEYS])


def restorer_statements(sources: list[RestoreSource], target_bucket_arn, target_key_arn, runs_table, restore_queue,
                        restore_dead_letters, topic, key_arn) -> list[Statement]:
    """Reads snapshots and content of its sources, writes restored files into the target (the source
    bucket), records each user's result under the restore's keys. It cannot delete, write a backup,
    read the source bucket, or touch anything of the backups' runs."""
    return [
        Statement(Sid="ListSnapshots", Effect=Allow, Action=[s3_actions.ListBucket],
                  Resource=[s.bucket_arn for s in sources]),
        Statement(Sid="ReadSnapshotsAndContent", Effect=Allow, Action=[s3_actions.GetObject],
                  Resource=[objects_in(s.bucket_arn, prefix) for s in sources
                            for prefix in (contract.CONTENT_PREFIX, contract.MANIFEST_PREFIX, contract.JOURNAL_PREFIX)]),
        # A copy out of a source in another Region is a request to the target's Region, and AWS does
        # not document which Region's S3 then asks KMS to decrypt: both are admitted (as the
        # operator's DecryptReplica, roles.decrypt_replica_statement).
        *[Statement(Sid=f"Decrypt{s.name.capitalize()}", Effect=Allow, Action=[kms_actions.Decrypt],
                    Resource=[s.key_arn],
                    Condition=all_of(s3_reading_a_copy_source_in(s.region), bucket_key_context(s.bucket_arn)))
          for s in sources],
        # AbortMultipartUpload: a failed copy of a file over 5 GiB cleans up its parts.
        Statement(Sid="RestoreIntoSourceBucket", Effect=Allow,
                  Action=[s3_actions.PutObject, s3_actions.AbortMultipartUpload],
                  Resource=[objects_in(target_bucket_arn)]),
        Statement(Sid="EncryptRestoredFiles", Effect=Allow, Action=[kms_actions.GenerateDataKey, kms_actions.Decrypt],
                  Resource=[target_key_arn], Condition=all_of(via("s3"), bucket_key_context(target_bucket_arn))),
        Statement(Sid="RecordRestoreResults", Effect=Allow,
                  Action=[ddb.GetItem, ddb.BatchGetItem, ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")], Condition=all_of(restore_records_only())),
        Statement(Sid="ConsumeRestoreJobs", Effect=Allow,
                  Action=[sqs_actions.ReceiveMessage, sqs_actions.DeleteMessage, sqs_actions.ChangeMessageVisibility,
                          sqs_actions.GetQueueAttributes],
                  Resource=[GetAtt(restore_queue, "Arn"), GetAtt(restore_dead_letters, "Arn")]),
        Statement(Sid="HandOnRestoreContinuations", Effect=Allow, Action=[sqs_actions.SendMessage],
                  Resource=[GetAtt(restore_queue, "Arn")]),
        Statement(Sid="PublishRestoreSummary", Effect=Allow, Action=[sns_actions.Publish], Resource=[Ref(topic)]),
        key_use_statement(key_arn, "dynamodb", "sqs", "sns", "lambda"),
    ]


def operator_restore_statements(runs_table, restore_queue, key_arn) -> list[Statement]:
    """The operator's part: record a restore (its header, tallies and users) and enqueue its jobs."""
    return [
        Statement(Sid="StartRestores", Effect=Allow, Action=[ddb.PutItem, ddb.UpdateItem],
                  Resource=[GetAtt(runs_table, "Arn")], Condition=all_of(restore_records_only())),
        Statement(Sid="EnqueueRestoreJobs", Effect=Allow, Action=[sqs_actions.SendMessage],
                  Resource=[GetAtt(restore_queue, "Arn")]),
        Statement(Sid="EncryptRestoreJobs", Effect=Allow, Action=[kms_actions.GenerateDataKey, kms_actions.Decrypt],
                  Resource=[key_arn], Condition=all_of(via("sqs"))),
    ]
