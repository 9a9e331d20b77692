"""Property: random interleavings of backups, source changes and garbage collection (including a
collection running in the middle of a backup, and a backup in the middle of a collection) never
lose content that a kept manifest references, and every kept snapshot restores what the source
held at its run."""
from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, example, given, settings as hyp_settings, strategies as st

from backup_cfn.engine import naming
from backup_cfn.engine.initiator import start_run
from backup_cfn.engine.manifest import list_manifests, read_manifest
from backup_cfn.engine.pruner import prune
from backup_cfn.engine.worker import Job, handle_message

from engine_support import make_engine, source_state

USERS = ("ann", "ben")
PATHS = ("report.pdf", "sheet.xlsx", "letter.pdf")
# A small pool, so the same content appears across users and comes back after being collected.
POOL = tuple(bytes([65 + i]) * (300 + 97 * i) for i in range(4))
RETENTION_DAYS = 3

operations = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from(USERS), st.sampled_from(PATHS), st.integers(0, len(POOL) - 1)),
    st.tuples(st.just("delete"), st.sampled_from(USERS), st.sampled_from(PATHS)),
    st.tuples(st.just("backup"), st.integers(1, 3)),
    st.tuples(st.just("prune"), st.integers(0, 3)),
    st.tuples(st.just("prune_during_backup"), st.sampled_from(["listed", "hashed", "stored", "manifest_written"]),
              st.integers(1, 5), st.sampled_from(USERS)),
    st.tuples(st.just("backup_during_prune"), st.integers(1, 3)),
), min_size=2, max_size=9)


class Model:
    def __init__(self, engine):
        self.engine = engine
        self.snapshots: dict[tuple[str, str], dict[str, bytes]] = {}

    def backup(self, hook_for=None) -> None:
        e = self.engine
        run_id = naming.run_id_for(e.clock())
        expected = {u: source_state(e, u) for u in USERS}
        start_run(e.clients, e.settings, run_id)
        for user in USERS:
            if not expected[user] and not list_manifests(e.s3, e.settings.backup_bucket, user):
                continue  # never had files: not discovered
            hook = hook_for(user) if hook_for else (lambda step: None)
            handle_message(e.clients, e.settings, Job(run_id, user).body(), hook=hook)
            self.snapshots[(user, run_id)] = expected[user]

    def check(self) -> None:
        e = self.engine
        manifests = list_manifests(e.s3, e.settings.backup_bucket)
        present = {(u, r) for u, r, _ in manifests}
        for user in USERS:
            taken = sorted(r for u, r in self.snapshots if u == user)
            if taken:
                assert (user, taken[-1]) in present, f"{user}'s newest snapshot {taken[-1]} was removed"
        for user, run_id, key in manifests:
            manifest = read_manifest(e.s3, e.settings.backup_bucket, key)
            expected = self.snapshots[(user, run_id)]
            assert set(manifest.entries) == set(expected)
            for path, entry in manifest.entries.items():
                body = e.s3.get_object(Bucket=e.settings.backup_bucket, Key=naming.content_key(entry.sha256))["Body"].read()
                assert hashlib.sha256(body).hexdigest() == entry.sha256 == hashlib.sha256(expected[path]).hexdigest()


@hyp_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
# The race the grace period exists for: ben's job has touched content that only an expired
# snapshot of ann's references, and the collector sweeps before ben's manifest is written.
@example(ops=[("put", "ann", "report.pdf", 0), ("backup", 1), ("put", "ann", "report.pdf", 1), ("backup", 1),
              ("put", "ben", "report.pdf", 0), ("prune_during_backup", "stored", 5, "ben")])
# The race the conditional mark exists for: a backup touches the content between the sweep and the mark.
@example(ops=[("put", "ann", "report.pdf", 0), ("backup", 1), ("put", "ann", "report.pdf", 1), ("backup", 1),
              ("put", "ben", "report.pdf", 0), ("backup_during_prune", 5)])
def test_no_interleaving_loses_content_a_kept_manifest_references(local_env, ops):
    apply(make_engine(local_env, retention_days=RETENTION_DAYS, claim_wait_seconds=0.2, job_threads=2), ops)


@hyp_settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_with_weekly_and_monthly_snapshots_no_interleaving_loses_content_either(local_env, ops):
    """The same with the longer-term rules on: they only add to what is kept, so every kept snapshot
    still restores (docs/engine.md, "Longer-term retention")."""
    apply(make_engine(local_env, retention_days=RETENTION_DAYS, claim_wait_seconds=0.2, job_threads=2,
                      keep_weekly=2, keep_monthly=1), ops)


def apply(engine, ops) -> None:
    model = Model(engine)
    for op in ops:
        kind = op[0]
        if kind == "put":
            engine.s3.put_object(Bucket=engine.settings.source_bucket, Key=f"{op[1]}/{op[2]}", Body=POOL[op[3]])
        elif kind == "delete":
            engine.s3.delete_object(Bucket=engine.settings.source_bucket, Key=f"{op[1]}/{op[2]}")
        elif kind == "backup":
            engine.clock.advance(days=op[1])
            model.backup()
        elif kind == "prune":
            engine.clock.advance(days=op[1])
            prune(engine.clients, engine.settings)
        elif kind == "prune_during_backup":
            engine.clock.advance(days=op[2])
            fired = []

            def hook_for(user, step=op[1], target=op[3]):
                def hook(name):
                    if name == step and user == target and not fired:
                        fired.append(name)
                        prune(engine.clients, engine.settings)
                return hook
            model.backup(hook_for)
        elif kind == "backup_during_prune":
            engine.clock.advance(days=op[1])
            prune(engine.clients, engine.settings, before_mark=lambda: (engine.clock.advance(seconds=1), model.backup()))
        model.check()

