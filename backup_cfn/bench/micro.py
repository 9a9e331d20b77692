"""Scenarios 3 and 5, in process: the worker's streaming SHA-256 against hashlib, and the
template build."""
from __future__ import annotations

import hashlib
import io
import random
import time

from backup_cfn.bench.rig import Sizes


def hashing(sizes: Sizes, rounds: int = 3) -> dict:
    from backup_cfn.engine.hashing import sha256_of_stream

    data = random.Random(3).randbytes(1024 * 1024) * sizes.hash_mib  # content does not change SHA-256's speed
    def best(fn) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)
    reference = hashlib.sha256(data).hexdigest()
    streamed, _ = sha256_of_stream(io.BytesIO(data))
    if streamed != reference:
        raise RuntimeError("the streaming hash disagrees with hashlib")
    engine_s = best(lambda: sha256_of_stream(io.BytesIO(data)))
    hashlib_s = best(lambda: hashlib.sha256(data).hexdigest())
    mib = sizes.hash_mib
    return {"mib": mib, "engine_mib_per_second": round(mib / engine_s, 1),
            "hashlib_mib_per_second": round(mib / hashlib_s, 1), "ratio": round(hashlib_s / engine_s, 3),
            "target": ">= 0.9"}


def template_build(sizes: Sizes) -> dict:
    from backup_cfn.config import load_environments
    from backup_cfn.stack.render import render_environment

    envs = list(load_environments().values())
    render_environment(envs[0])  # imports and first-use caches out of the measurement
    times = []
    for _ in range(sizes.template_rounds):
        started = time.perf_counter()
        for env in envs:
            render_environment(env)
        times.append(time.perf_counter() - started)
    times.sort()
    return {"environments": [e.name for e in envs], "templates": 2 * len(envs), "rounds": len(times),
            "best_ms": round(times[0] * 1000, 1), "median_ms": round(times[len(times) // 2] * 1000, 1)}


def hashing_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 3's rows of the bench table."""
    h = results.get("hashing")
    if not h:
        return []
    return [("3 hashing", f"engine {h['engine_mib_per_second']} MiB/s, hashlib {h['hashlib_mib_per_second']} MiB/s",
             f"{h['ratio']}", ">= 0.9")]


def template_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Scenario 5's rows of the bench table."""
    t = results.get("templates")
    if not t:
        return []
    return [("5 templates", f"{t['templates']} templates, best of {t['rounds']}",
             f"{t['best_ms']} ms (median {t['median_ms']})", "-")]
