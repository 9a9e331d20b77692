"""DynamoDB writes to one item made one at a time, as AWS applies them: the engine's clients on the
emulator go through this wrapper (backup_cfn.aws.engine_clients)."""
from __future__ import annotations

import threading

from backup_cfn import contract


class AtomicWrites:
    """A DynamoDB client whose writes to the same item are made one at a time. DynamoDB applies
    each conditional write and each ADD atomically; moto 5.2.5 does not (it reads, checks and
    writes without a lock), so concurrent local workers could both win a claim or lose a counter
    increment. All local traffic comes from this process, so serialising writes per item here
    restores AWS's behaviour; writes to different items still run in parallel, reads pass through."""

    WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items"})
    KEY_ATTRIBUTES = (contract.RUNS_PARTITION_KEY, contract.RUNS_SORT_KEY, contract.CONTENT_PARTITION_KEY)
    STRIPES = 64
    _locks = [threading.Lock() for _ in range(STRIPES)]

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if name not in self.WRITES:
            return attribute

        def serialised(*args, **kwargs):
            stripes = sorted({self._stripe(op) for op in self._operations(name, kwargs)})
            for stripe in stripes:
                self._locks[stripe].acquire()
            try:
                return attribute(*args, **kwargs)
            finally:
                for stripe in reversed(stripes):
                    self._locks[stripe].release()
        return serialised

    @staticmethod
    def _operations(name: str, kwargs: dict) -> list[dict]:
        if name == "transact_write_items":
            return [next(iter(entry.values())) for entry in kwargs.get("TransactItems", [])]
        return [kwargs]

    def _stripe(self, operation: dict) -> int:
        raw = operation.get("Key") or operation.get("Item") or {}
        identity = (operation.get("TableName"),
                    tuple(str(raw.get(name)) for name in self.KEY_ATTRIBUTES if name in raw))
        return hash(identity) % self.STRIPES
