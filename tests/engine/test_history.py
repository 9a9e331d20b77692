"""find's matching and version history, and compare's four kinds of change, on manifests built by
hand (the emulator tests in test_browse.py run the same code on real backups)."""
from __future__ import annotations

import pytest

from backup_cfn.engine.history import (
    ADDED,
    CHANGED,
    CURRENT,
    DELETED,
    METADATA,
    MODIFIED,
    REMOVED,
    collect_versions,
    compare,
    mark_states,
    matcher,
    newest_first,
)
from backup_cfn.engine.manifest import Entry, Manifest, SnapshotRef

A, B, C = "a" * 64, "b" * 64, "c" * 64


def entry(sha: str, size: int = 10, etag: str = '"e"', modified: str = "2026-11-24T02:00:00Z", version=None) -> Entry:
    return Entry(sha, size, etag, modified, version)


def snap(user: str, run_id: str, entries: dict) -> tuple[SnapshotRef, Manifest]:
    return (SnapshotRef(user, run_id, f"manifests/{user}/{run_id}.json.gz"),
            Manifest(user, run_id, "2026-11-24T02:00:00Z", entries))


@pytest.mark.parametrize("pattern, path, sha, hit", [
    ("report-03.pdf", "reports/2026/report-03.pdf", A, True),      # no '/': the file's name
    ("report-0?.pdf", "reports/2026/report-07.pdf", A, True),
    ("*.xlsx", "reports/2026/report-03.pdf", A, False),
    ("reports/*.pdf", "reports/2026/report-03.pdf", A, True),      # with '/': the whole path; * spans '/'
    ("2026/*.pdf", "reports/2026/report-03.pdf", A, False),        # a path glob is anchored at the start
    ("Report-03.pdf", "reports/2026/report-03.pdf", A, False),     # case-sensitive, as S3 keys are
    (A, "any/thing", A, True),                                      # a full SHA-256
    (A, "any/thing", B, False),
    ("sha256:aaaaaaaa", "x", A, True),                              # a prefix, as ls shows it
    ("sha256:aaaaaaab", "x", A, False),
])
def test_matcher(pattern, path, sha, hit):
    assert matcher(pattern)(path, entry(sha)) is hit


@pytest.mark.parametrize("pattern", ["", "sha256:abc", "sha256:XYZXYZXYZ", "sha256:" + "a" * 65])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(ValueError):
        matcher(pattern)


def test_each_version_has_its_first_and_last_run_and_its_state_in_the_newest_snapshot():
    history = [
        snap("ann", "20261101T020000Z", {"r/q3.pdf": entry(A), "r/q4.pdf": entry(C)}),
        snap("ann", "20261102T020000Z", {"r/q3.pdf": entry(A), "r/q4.pdf": entry(C)}),
        snap("ann", "20261103T020000Z", {"r/q3.pdf": entry(B, 12), "r/q4.pdf": entry(C)}),
        snap("ann", "20261104T020000Z", {"r/q3.pdf": entry(B, 12)}),
        snap("ben", "20261103T020000Z", {"r/q3.pdf": entry(A)}),
    ]
    versions = collect_versions(history, matcher("q*.pdf"))
    mark_states(versions.values(), {"ann": history[3][1], "ben": history[4][1]})
    found = [(v.user, v.path, v.sha256[0], v.first_run[6:8], v.last_run[6:8], v.snapshots, v.state)
             for v in newest_first(versions.values())]
    assert found == [                                     # last seen newest first, then user and path
        ("ann", "r/q3.pdf", "b", "03", "04", 2, CURRENT),
        ("ann", "r/q4.pdf", "c", "01", "03", 3, DELETED),     # gone from the 4th: when it disappeared
        ("ben", "r/q3.pdf", "a", "03", "03", 1, CURRENT),
        ("ann", "r/q3.pdf", "a", "01", "02", 2, CHANGED),
    ]


def test_compare_tells_added_removed_modified_and_metadata_only_with_totals():
    before = Manifest("ann", "20261101T020000Z", "t", {
        "same.pdf": entry(A, 10), "gone.pdf": entry(B, 20), "edited.pdf": entry(C, 30),
        "touched.pdf": entry(A, 10, etag='"1"', modified="2026-11-01T00:00:00Z"),
    })
    after = Manifest("ann", "20261102T020000Z", "t", {
        "same.pdf": entry(A, 10), "new.pdf": entry(B, 40), "edited.pdf": entry(A, 10),
        "touched.pdf": entry(A, 10, etag='"2"', modified="2026-11-02T00:00:00Z"),
    })
    result = compare(before, after)
    assert [(c.kind, c.path) for c in result.changes] == [
        (MODIFIED, "edited.pdf"), (REMOVED, "gone.pdf"), (ADDED, "new.pdf"), (METADATA, "touched.pdf")]
    assert result.of_kind(METADATA)[0].fields == ("etag", "last_modified")
    assert result.totals() == {
        "added": 1, "added_bytes": 40, "removed": 1, "removed_bytes": 20, "modified": 1,
        "modified_bytes_before": 30, "modified_bytes_after": 10, "metadata": 1, "unchanged": 1,
        "files_a": 4, "files_b": 4, "bytes_a": 70, "bytes_b": 70,
    }
    assert compare(after, after).changes == [] and compare(after, after).unchanged == 4
