from backup_cfn import aws, emulator


def test_emulator_answers_and_serves_s3_through_environment_clients(local_env):
    s3 = aws.client(local_env, "s3")
    s3.create_bucket(Bucket="probe")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["probe"]


def test_reset_clears_state(local_env):
    s3 = aws.client(local_env, "s3")
    s3.create_bucket(Bucket="probe")
    emulator.reset(local_env.endpoint_url)
    assert s3.list_buckets()["Buckets"] == []


def test_is_ready_is_false_for_a_closed_port():
    assert emulator.is_ready(emulator.url(emulator.free_port()), timeout=0.2) is False
