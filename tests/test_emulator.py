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


def test_start_then_stop_leaves_no_process_behind(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(emulator, "STATE_DIR", tmp_path)
    port = emulator.free_port()
    process = emulator.start(port)
    assert emulator.is_ready(emulator.url(port))
    assert emulator.start(port) is None  # already answering: not started twice
    assert emulator.stop(port) is True
    assert not emulator.is_ready(emulator.url(port), timeout=0.2)
    try:
        os.kill(process.pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert alive is False  # exited and reaped, not a zombie
    assert emulator.stop(port) is False
