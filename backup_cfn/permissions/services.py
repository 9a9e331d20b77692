"""What AWS services do on the stack's behalf, read from the template: each is a principal (a service,
or a role a service assumes) and the requests AWS authorises for it. None of these can be recorded:
AWS makes them, not our code, and the emulator enforces none of them.

- CloudTrail: checks the trail bucket's ACL, writes log files with the key, delivers to its log group;
- CloudWatch Logs: encrypts every log group with the key;
- CloudWatch alarms: publish to the encrypted topic;
- EventBridge: invokes the functions on schedule, sends the source bucket's change events to the
  encrypted capture queue (the queue's policy and the key's), and puts undeliverable events in the
  failure queue;
- Lambda: assumes the function roles, polls the job queue for the worker (event source mapping),
  sends failed asynchronous invocations to the failure queue (on-failure destination);
- S3 replication: assumes the replication role, reads versions (and Object Lock retention and legal
  holds), decrypts with the backup key, encrypts replicas with the replica key;
- S3 server access logging: delivers logs to the access-log bucket.
"""
from __future__ import annotations

from dataclasses import dataclass

from backup_cfn.permissions.iam import Principal
from backup_cfn.permissions.model import PRIMARY, REPLICA, DeploymentModel
from backup_cfn.permissions.requests import Need, kms_through


@dataclass(frozen=True)
class ServiceAction:
    actor: str             # a service (cloudtrail.amazonaws.com) or a role's logical ID
    need: Need

    def principal(self, model: DeploymentModel) -> Principal:
        if self.actor.endswith(".amazonaws.com"):
            return Principal.service(self.actor)
        return model.principal(self.actor)


def _resolver_of(model: DeploymentModel, logical_id: str):
    """The resolver of the stack holding `logical_id` (the primary's, or the vault's)."""
    for resolver in model.resolvers.values():
        if logical_id in resolver.resources:
            return resolver
    raise KeyError(logical_id)


def _props(model: DeploymentModel, logical_id: str) -> dict:
    resolver = _resolver_of(model, logical_id)
    return resolver.resolve(resolver.resources[logical_id].get("Properties", {}), logical_id)


def _of_type(model: DeploymentModel, rtype: str) -> list[str]:
    """Resources of a type in the primary and, with a vault, in the vault stack (the one-account
    replica holds no functions, alarms or schedules)."""
    stacks = [PRIMARY] + ([REPLICA] if model.env.has_vault else [])
    return [lid for stack in stacks for lid, r in model.resolvers[stack].resources.items() if r["Type"] == rtype]


def _source(model: DeploymentModel, arn: str, logical_id: str | None = None) -> dict:
    account = _resolver_of(model, logical_id).pseudo.account_id if logical_id else model.account
    return {"aws:SourceArn": arn, "aws:SourceAccount": account}


def cloudtrail(model: DeploymentModel) -> list[ServiceAction]:
    actions = []
    trail_service = "cloudtrail.amazonaws.com"
    for trail in _of_type(model, "AWS::CloudTrail::Trail"):
        props = _props(model, trail)
        arn = model.resolvers[PRIMARY].get_att(trail, "Arn")
        bucket = model.find(props["S3BucketName"])
        key = props.get("KMSKeyId")
        source = _source(model, arn)
        actions.append(ServiceAction(trail_service, Need("s3:GetBucketAcl", bucket.arn, source, "trail checks its bucket")))
        actions.append(ServiceAction(trail_service, Need(
            "s3:PutObject", f"{bucket.arn}/AWSLogs/{model.account}/CloudTrail/{model.env.region}/2026/11/30/log.json.gz",
            {**source, "s3:x-amz-acl": "bucket-owner-full-control", "s3:x-amz-server-side-encryption": "aws:kms",
             "s3:x-amz-server-side-encryption-aws-kms-key-id": key}, "trail writes a log file")))
        if key:
            context = {**source, "kms:EncryptionContext:aws:cloudtrail:arn": arn}
            actions += [ServiceAction(trail_service, Need("kms:GenerateDataKey", key, context, "trail encrypts a log file")),
                        ServiceAction(trail_service, Need("kms:DescribeKey", key, source, "trail checks its key"))]
            actions += trail_bucket_key_requests(model, trail, bucket, key, source)
        if props.get("CloudWatchLogsRoleArn"):
            role = next(lid for lid, s in model.resources.items() if s.arn == props["CloudWatchLogsRoleArn"])
            group = props["CloudWatchLogsLogGroupArn"].removesuffix(":*")
            actions.append(ServiceAction(trail_service, Need("sts:AssumeRole", props["CloudWatchLogsRoleArn"], source,
                                                             "trail assumes its logs role")))
            stream = f"{group}:log-stream:{model.account}_CloudTrail_{model.env.region}"
            actions += [ServiceAction(role, Need(a, stream, {}, "trail delivers to its log group"))
                        for a in ("logs:CreateLogStream", "logs:PutLogEvents")]
    return actions


def trail_bucket_key_requests(model: DeploymentModel, trail: str, bucket, key: str, source: dict) -> list[ServiceAction]:
    """With an S3 Bucket Key on the trail bucket, "kms:Decrypt permissions are required to create or
    update a trail with SSE-KMS encryption enabled" (CloudTrail User Guide, Configure AWS KMS key
    policies for CloudTrail), for the CloudTrail service principal (the statement that page gives).
    Whether the Decrypt comes through S3 (the bucket key's context, the bucket's ARN) or from
    CloudTrail itself (its own context) the page does not say: both are evaluated."""
    encryption = _props(model, bucket.logical_id).get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    if not any(rule.get("BucketKeyEnabled") in (True, "true") for rule in encryption):
        return []
    arn = source["aws:SourceArn"]
    through_s3 = {**source, "kms:ViaService": f"s3.{bucket.region}.amazonaws.com",
                  "kms:EncryptionContext:aws:s3:arn": bucket.arn}
    direct = {**source, "kms:EncryptionContext:aws:cloudtrail:arn": arn}
    return [ServiceAction("cloudtrail.amazonaws.com", Need("kms:Decrypt", key, context, f"{trail} {why}"))
            for context, why in ((through_s3, "writes through the bucket key"), (direct, "decrypts its data key"))]


def log_groups(model: DeploymentModel) -> list[ServiceAction]:
    actions = []
    for group in _of_type(model, "AWS::Logs::LogGroup"):
        props = _props(model, group)
        if not props.get("KmsKeyId"):
            continue
        pseudo = _resolver_of(model, group).pseudo
        service = f"logs.{pseudo.region}.amazonaws.com"
        arn = f"arn:aws:logs:{pseudo.region}:{pseudo.account_id}:log-group:{props['LogGroupName']}"
        context = {"kms:EncryptionContext:aws:logs:arn": arn}
        actions += [ServiceAction(service, Need(a, props["KmsKeyId"], context, f"CloudWatch Logs encrypts {group}"))
                    for a in ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt", "kms:DescribeKey")]
    return actions


def alarms(model: DeploymentModel) -> list[ServiceAction]:
    service = "cloudwatch.amazonaws.com"
    actions = []
    for alarm in _of_type(model, "AWS::CloudWatch::Alarm"):
        arn = _resolver_of(model, alarm).get_att(alarm, "Arn")
        for topic_arn in _props(model, alarm).get("AlarmActions", []):
            topic = model.find(topic_arn)
            source = _source(model, arn, alarm)
            actions.append(ServiceAction(service, Need("sns:Publish", topic.arn, source, f"{alarm} notifies")))
            actions += [ServiceAction(service, Need(a, topic.key_arn, source, f"{alarm} publishes to the encrypted topic"))
                        for a in ("kms:GenerateDataKey", "kms:Decrypt") if topic.key_arn]
    return actions


def schedules(model: DeploymentModel) -> list[ServiceAction]:
    """EventBridge runs each rule's targets and puts an event it cannot deliver into the target's
    dead-letter queue. Into an encrypted queue, SQS asks KMS for the data key as events.amazonaws.com,
    with the context every SQS data key has (kms:ViaService, aws:sqs:arn); whether that request also
    carries aws:SourceArn and aws:SourceAccount, AWS does not document (EventBridge User Guide,
    Creating rules: the key policy statement it asks for has no condition), so it is evaluated both
    with and without them, and each must be allowed."""
    service = "events.amazonaws.com"
    actions = []
    for rule in _of_type(model, "AWS::Events::Rule"):
        arn = _resolver_of(model, rule).get_att(rule, "Arn")
        source = _source(model, arn, rule)
        for target in _props(model, rule).get("Targets", []):
            queues = [target.get("DeadLetterConfig", {}).get("Arn")]
            if ":sqs:" in target["Arn"]:
                queues.append(target["Arn"])
            else:
                actions.append(ServiceAction(service, Need("lambda:InvokeFunction", target["Arn"], source,
                                                           f"{rule} runs")))
            for queue in (model.find(q) for q in queues if q):
                actions.append(ServiceAction(service, Need("sqs:SendMessage", queue.arn, source,
                                                           f"{rule}: an event into {queue.logical_id}")))
                actions += eventbridge_queue_key_requests(model, rule, queue)
    return actions


def eventbridge_queue_key_requests(model: DeploymentModel, rule: str, queue) -> list[ServiceAction]:
    if not queue.key_arn:
        return []
    through_sqs = {"kms:ViaService": f"sqs.{queue.region}.amazonaws.com",
                   "kms:EncryptionContext:aws:sqs:arn": queue.arn}
    source = _source(model, model.resolvers[PRIMARY].get_att(rule, "Arn"))
    return [ServiceAction("events.amazonaws.com", Need(action, queue.key_arn, context, f"{rule}: into {why}"))
            for context, why in ((through_sqs, "the encrypted queue (no source keys)"),
                                 ({**through_sqs, **source}, "the encrypted queue (with source keys)"))
            for action in ("kms:GenerateDataKey", "kms:Decrypt")]


def functions(model: DeploymentModel) -> list[ServiceAction]:
    """Lambda assumes each role; the event source mapping and on-failure destinations act as the role."""
    actions = []
    for function in _of_type(model, "AWS::Lambda::Function"):
        role_arn = _props(model, function)["Role"]
        actions.append(ServiceAction("lambda.amazonaws.com", Need("sts:AssumeRole", role_arn, {}, f"{function} starts")))
    for mapping in _of_type(model, "AWS::Lambda::EventSourceMapping"):
        props = _props(model, mapping)
        queue = model.find(props["EventSourceArn"])
        role = _role_of_function(model, props["FunctionName"])
        for action, kms in (("sqs:ReceiveMessage", ("kms:Decrypt",)), ("sqs:DeleteMessage", ()),
                            ("sqs:ChangeMessageVisibility", ()), ("sqs:GetQueueAttributes", ())):
            actions.append(ServiceAction(role, Need(action, queue.arn, {}, f"{mapping} polls for the function")))
            actions += [ServiceAction(role, need) for need in kms_through(
                model, "sqs", queue.region, queue.key_arn, kms, {"kms:EncryptionContext:aws:sqs:arn": queue.arn},
                f"{mapping} reads encrypted messages")]
    for invoke_config in _of_type(model, "AWS::Lambda::EventInvokeConfig"):
        props = _props(model, invoke_config)
        queue = model.find(props["DestinationConfig"]["OnFailure"]["Destination"])
        role = _role_of_function(model, props["FunctionName"])
        actions.append(ServiceAction(role, Need("sqs:SendMessage", queue.arn, {}, f"{invoke_config}: a failed invocation")))
        actions += [ServiceAction(role, need) for need in kms_through(
            model, "sqs", queue.region, queue.key_arn, ("kms:GenerateDataKey", "kms:Decrypt"),
            {"kms:EncryptionContext:aws:sqs:arn": queue.arn}, f"{invoke_config}: into the encrypted queue")]
    return actions


def _role_of_function(model: DeploymentModel, function_name: str) -> str:
    function = model.find(function_name)
    role_arn = _props(model, function.logical_id)["Role"]
    return next(lid for lid, s in model.resources.items() if s.arn == role_arn)


def replication(model: DeploymentModel) -> list[ServiceAction]:
    actions = []
    for bucket_id in _of_type(model, "AWS::S3::Bucket"):
        config = _props(model, bucket_id).get("ReplicationConfiguration")
        if not config:
            continue
        source = model.resources[bucket_id]
        role = next(lid for lid, s in model.resources.items() if s.arn == config["Role"])
        actions.append(ServiceAction("s3.amazonaws.com", Need("sts:AssumeRole", config["Role"],
                                                              {"aws:SourceAccount": model.account},
                                                              "S3 assumes the replication role")))
        version = f"{source.arn}/content/ab/cd/{'ab' * 32}"
        reads = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
        actions += [ServiceAction(role, Need(a, source.arn, {}, "replication reads its configuration")) for a in reads]
        version_reads = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
        if _props(model, bucket_id).get("ObjectLockEnabled"):   # locked versions replicate their retention
            version_reads += ["s3:GetObjectRetention", "s3:GetObjectLegalHold"]
        actions += [ServiceAction(role, Need(a, version, {}, "replication reads a version")) for a in version_reads]
        actions += [ServiceAction(role, n) for n in kms_through(
            model, "s3", source.region, source.key_arn, ("kms:Decrypt",),
            {"kms:EncryptionContext:aws:s3:arn": source.arn}, "replication decrypts a version (bucket key)")]
        for rule in config["Rules"]:
            destination = model.find(rule["Destination"]["Bucket"])
            replica_key = rule["Destination"].get("EncryptionConfiguration", {}).get("ReplicaKmsKeyID")
            replica = f"{destination.arn}/content/ab/cd/{'ab' * 32}"
            # A replica of an SSE-KMS object is written under the replica key (the vault's bucket
            # policy refuses any other: s3:x-amz-server-side-encryption-aws-kms-key-id on ReplicateObject).
            encryption = {"s3:x-amz-server-side-encryption": "aws:kms",
                          "s3:x-amz-server-side-encryption-aws-kms-key-id": replica_key} if replica_key else {}
            writes = [("s3:ReplicateObject", encryption), ("s3:ReplicateTags", {})]
            if rule.get("DeleteMarkerReplication", {}).get("Status") == "Enabled":
                writes.append(("s3:ReplicateDelete", {}))
            actions += [ServiceAction(role, Need(a, replica, context, "replication writes a replica"))
                        for a, context in writes]
            actions += [ServiceAction(role, n) for n in kms_through(
                model, "s3", destination.region, replica_key, ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"),
                {"kms:EncryptionContext:aws:s3:arn": destination.arn}, "replication encrypts a replica (bucket key)")]
    return actions


def access_logs(model: DeploymentModel) -> list[ServiceAction]:
    actions = []
    for resolver in model.resolvers.values():
        for bucket_id, resource in resolver.resources.items():
            if resource["Type"] != "AWS::S3::Bucket":
                continue
            props = resolver.resolve(resource.get("Properties", {}), bucket_id)
            logging = props.get("LoggingConfiguration")
            if not logging:
                continue
            target = model.find(logging["DestinationBucketName"])
            source = model.resources[bucket_id]
            actions.append(ServiceAction("logging.s3.amazonaws.com", Need(
                "s3:PutObject", f"{target.arn}/{logging.get('LogFilePrefix', '')}2026-11-30-00-00-00-0123456789ABCDEF",
                {"aws:SourceArn": source.arn, "aws:SourceAccount": resolver.pseudo.account_id},
                f"access logs of {bucket_id}")))
    return actions


def service_actions(model: DeploymentModel) -> list[ServiceAction]:
    return [*cloudtrail(model), *log_groups(model), *alarms(model), *schedules(model), *functions(model),
            *replication(model), *access_logs(model)]
