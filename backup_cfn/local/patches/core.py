"""moto's shared machinery in the emulator: its clock and the handler lookup of every request
(listed in docs/emulator.md).

Neither changes a value or an answer; each removes per-call work that made it a large share of
the emulator's CPU in the 1,000-user demo (profiled with py-spy: the clock 28% of the samples,
the handler lookup 3% of DynamoDB's).
"""
from __future__ import annotations

import sys


def patch_clock() -> None:
    """moto 5.2.5's `moto.core.utils.utcnow()`, `utcfromtimestamp()`, `unix_time()` and
    `unix_time_millis()` run an import statement on every call (`from datetime import UTC`,
    inside the function), and `unix_time()` builds the epoch anew each time
    (`utcfromtimestamp(0)`). SQS calls them once or twice per queued message on every receive, so
    they were 28% of the emulator's CPU in the demo. The replacements return the same values (the
    same naive-UTC datetimes, the same float arithmetic from the same epoch) without that work.

    moto's modules import these names (`from moto.core.utils import unix_time`), so each moto
    module already imported is rebound, as is `moto.core.utils` itself for modules imported
    later. Idempotent."""
    import datetime

    import moto.core.utils as core_utils

    if getattr(core_utils, "_backup_cfn_fast_clock", False):
        return
    # The modules whose hot paths read the clock, imported first so that their names are rebound.
    import moto.dynamodb.models  # noqa: F401
    import moto.s3.models  # noqa: F401
    import moto.sqs.models  # noqa: F401

    utc = datetime.timezone.utc  # the object `datetime.UTC` names
    epoch = datetime.datetime(1970, 1, 1)  # == moto's utcfromtimestamp(0)

    # `datetime.datetime` is looked up on each call, as moto's own functions do, so a clock that
    # replaces it (freezegun's freeze_time sets `datetime.datetime` to its FakeDatetime) is followed.
    def utcnow() -> datetime.datetime:
        return datetime.datetime.now(utc).replace(tzinfo=None)

    def utcfromtimestamp(value: float) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(value, tz=utc).replace(tzinfo=None)

    def unix_time(dt: datetime.datetime | None = None) -> float:
        dt = dt or utcnow()
        delta = dt - epoch
        return (delta.days * 86400) + (delta.seconds + (delta.microseconds / 1e6))

    def unix_time_millis(dt: datetime.datetime | None = None) -> float:
        return unix_time(dt) * 1000.0

    replacements = {"utcnow": utcnow, "utcfromtimestamp": utcfromtimestamp, "unix_time": unix_time,
                    "unix_time_millis": unix_time_millis}
    originals = {name: getattr(core_utils, name) for name in replacements}
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "moto" or module_name.startswith("moto.")):
            continue
        for name, original in originals.items():
            if getattr(module, name, None) is original:
                setattr(module, name, replacements[name])
    core_utils._backup_cfn_fast_clock = True


def patch_action_lookup() -> None:
    """moto 5.2.5's `BaseResponse.call_action` finds each request's handler (DynamoDB, SQS,
    CloudFormation, ...) with `action in method_names_from_class(cls)`, which runs
    `inspect.getmembers()` over the whole response class (hundreds of attributes, each fetched and
    tested) on every request. A name is in that list exactly when `getattr(cls, name)` is a plain
    function, since getmembers lists `dir(cls)`, every name the class's MRO reaches; so the
    replacement answers `in` by testing the one name, and still iterates as the full list. The
    same handler is found, and an unknown action still fails as before. Idempotent."""
    import inspect

    import moto.core.responses as core_responses

    if getattr(core_responses, "_backup_cfn_action_lookup", False):
        return
    original = core_responses.method_names_from_class

    class FunctionNames:
        """What `method_names_from_class(cls)` returns, with a cheap `in`."""

        __slots__ = ("cls",)

        def __init__(self, cls):
            self.cls = cls

        def __contains__(self, name) -> bool:
            return isinstance(name, str) and inspect.isfunction(getattr(self.cls, name, None))

        def __iter__(self):
            return iter(original(self.cls))

    core_responses.method_names_from_class = FunctionNames
    core_responses._backup_cfn_action_lookup = True
