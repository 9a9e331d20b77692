"""Synthetic client reports for demos and benchmarks, deterministic from a seed.

Each user holds a few binary documents (PDF) and spreadsheets (XLSX) from a few KB to a few MB,
a copy of the standard terms every client gets, and for some, one of a handful of shared
industry reports: identical files across users, as in real client folders. Each day after the
first, some files are revised, some are added and some are deleted.
"""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from backup_cfn.config import Environment
from backup_cfn.errors import UserError
from backup_cfn.ops.format import human_bytes

PDF_HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
XLSX_HEADER = b"PK\x03\x04\x14\x00\x06\x00"
# (share of files, smallest, largest) in bytes: mostly small, a long tail to a few MB.
SIZE_TIERS = ((0.85, 4 * 1024, 32 * 1024), (0.145, 32 * 1024, 256 * 1024), (0.005, 1024 * 1024, 3 * 1024 * 1024))
SHARED_TERMS = ("terms/standard-terms-2026.pdf", 64 * 1024)
INDUSTRY_REPORTS = 5
INDUSTRY_SHARE = 0.3
MODIFIED_SHARE = 0.05   # per file per day
ADDED_SHARE = 0.10      # per user per day
DELETED_SHARE = 0.02    # per user per day
CHECKSUM_SHARE = 0.5    # uploads through the portal, which asks S3 for a SHA-256


@dataclass(frozen=True)
class FileSpec:
    path: str
    size: int
    content_seed: str
    checksum: bool

    def data(self) -> bytes:
        header = PDF_HEADER if self.path.endswith(".pdf") else XLSX_HEADER
        body = random.Random(self.content_seed).randbytes(max(0, self.size - len(header)))
        return header + body


def user_name(index: int) -> str:
    return f"client-{index:04d}"


def _size(rng: random.Random) -> int:
    pick = rng.random()
    for share, low, high in SIZE_TIERS:
        if pick < share:
            return int(low * (high / low) ** rng.random())
        pick -= share
    return SIZE_TIERS[0][1]


def _new_file(rng: random.Random, seed: int, user: str, name: str) -> FileSpec:
    kind = "pdf" if rng.random() < 0.6 else "xlsx"
    return FileSpec(f"reports/{name}.{kind}", _size(rng), f"{seed}:{user}:{name}:0", rng.random() < CHECKSUM_SHARE)


def user_files(seed: int, user: str, day: int) -> dict[str, FileSpec]:
    """The user's files on `day` (1 = the first day)."""
    rng = random.Random(f"{seed}:{user}")
    files: dict[str, FileSpec] = {}
    for j in range(3 + rng.randrange(4)):
        spec = _new_file(rng, seed, user, f"2026/report-{j:02d}")
        files[spec.path] = spec
    path, size = SHARED_TERMS
    files[path] = FileSpec(path, size, f"{seed}:terms", False)
    if rng.random() < INDUSTRY_SHARE:
        k = rng.randrange(INDUSTRY_REPORTS)
        files[f"market/industry-outlook-{k}.pdf"] = FileSpec(
            f"market/industry-outlook-{k}.pdf", 160 * 1024 + k * 48 * 1024, f"{seed}:industry:{k}", True)
    for d in range(2, day + 1):
        churn = random.Random(f"{seed}:{user}:day{d}")
        for path in sorted(files):
            spec = files[path]
            if path.startswith("reports/") and churn.random() < MODIFIED_SHARE:
                size = _size(churn)
                size = size + 1 if size == spec.size else size   # a revision always changes the size
                files[path] = FileSpec(path, size, f"{seed}:{user}:{path}:{d}", spec.checksum)
        if churn.random() < ADDED_SHARE:
            spec = _new_file(churn, seed, user, f"2026/daily-{d:03d}")
            files[spec.path] = spec
        deletable = sorted(p for p in files if p.startswith("reports/"))
        if deletable and churn.random() < DELETED_SHARE:
            del files[churn.choice(deletable)]
    return files


@dataclass
class GenerateReport:
    users: int
    files: int
    bytes: int
    uploaded: int
    uploaded_bytes: int
    deleted: int


def generate(s3, bucket: str, *, users: int, day: int, seed: int = 42, threads: int = 8,
             progress: Callable[[int], None] | None = None) -> GenerateReport:
    """Make the bucket hold exactly day `day`'s files: upload what is missing or differs in size
    (every revision changes the size), delete what the day no longer has."""
    if users < 1 or day < 1:
        raise ValueError("users and day must be at least 1")
    existing: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            existing[obj["Key"]] = obj["Size"]
    wanted: dict[str, FileSpec] = {}
    for i in range(1, users + 1):
        user = user_name(i)
        for path, spec in user_files(seed, user, day).items():
            wanted[f"{user}/{path}"] = spec
    uploads = [(key, spec) for key, spec in sorted(wanted.items()) if existing.get(key) != spec.size]
    deletes = sorted(key for key in existing if key not in wanted and key.startswith("client-"))

    def upload(item) -> int:
        key, spec = item
        extra = {"ChecksumAlgorithm": "SHA256"} if spec.checksum else {}
        s3.put_object(Bucket=bucket, Key=key, Body=spec.data(), **extra)
        if progress:
            progress(1)
        return spec.size

    with ThreadPoolExecutor(max_workers=threads) as pool:
        uploaded_bytes = sum(pool.map(upload, uploads))
    for i in range(0, len(deletes), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in deletes[i:i + 1000]], "Quiet": True})
    return GenerateReport(users=users, files=len(wanted), bytes=sum(s.size for s in wanted.values()),
                          uploaded=len(uploads), uploaded_bytes=uploaded_bytes, deleted=len(deletes))


def do_demo_data(env: Environment, *, console: Console, users: int = 1000, day: int = 1, seed: int = 42) -> None:
    if users < 1 or day < 1:
        raise UserError("--users and --day must be at least 1")
    from backup_cfn.ops.target import connect

    target = connect(env)
    with Progress(TextColumn(f"day {day}: uploading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("upload", total=None)
        report = generate(target.clients.s3, target.settings.source_bucket, users=users, day=day,
                          seed=seed, progress=lambda n: progress.update(task, advance=n))
    console.print(f"s3://{target.settings.source_bucket} now holds day {day}: {report.users} users, "
                  f"{report.files} files, {human_bytes(report.bytes)} (uploaded {report.uploaded}, "
                  f"deleted {report.deleted})")
