"""SQS in the emulator: a receive, a send and a queue's attributes cost per message returned, not
per message queued, as on AWS (listed in docs/emulator.md).

moto 5.2.5's SQS is quadratic in the queue's length. ReceiveMessage checks each message it returns
against the retention period through `get_queue_attributes()`, which evaluates `Queue.attributes`
three times; each evaluation counts every queued message three times (ApproximateNumberOfMessages,
...NotVisible, ...Delayed), reading the clock twice per message. SendMessage(Batch) evaluates
`Queue.attributes` again per message. With the demo's 1,000 jobs queued that was 146 ms of CPU per
ReceiveMessage and 119 ms per SendMessageBatch: 35% of the emulator's CPU.
"""
from __future__ import annotations

import threading


def patch_queue_scans() -> None:
    """The same answers and errors as moto 5.2.5, without rescanning the queue per message:

    - the retention check reads the queue's MessageRetentionPeriod directly (the value
      `get_queue_attributes` returned for it);
    - `get_queue_attributes` evaluates `Queue.attributes` once per call, not once plus twice per
      name, and returns the same dict (the same names in the same order, None values left out);
    - `Queue.messages` and the three approximate counts read the clock once per scan instead of once
      or twice per message (a message is visible when now > visible_at and delayed when
      now < delayed_until, as `Message.visible` and `Message.delayed` compute);
    - `Queue.delete_message` finds the message in one pass (moto built two lists per message) and
      removes it in place, one delete at a time. moto rebuilt the whole list and assigned it back,
      so two deletes at once (the server answers requests on threads) could each write back a list
      still holding the other's message: a deleted job came back from the dead as in flight, and
      a message sent meanwhile could be lost. The local runner, which waits for an empty queue,
      then waited out the resurrected message's visibility (15 minutes in `make demo`).

    Idempotent."""
    from moto.sqs import models

    queue_class, backend_class = models.Queue, models.SQSBackend
    if getattr(queue_class, "_backup_cfn_queue_scans", False):
        return
    deletes = threading.Lock()

    def messages(self) -> list:
        now = models.unix_time_millis()
        return [message for message in self._messages if now > message.visible_at and not now < message.delayed_until]

    def approximate_number_of_messages_delayed(self) -> int:
        now = models.unix_time_millis()
        return sum(1 for message in self._messages if now < message.delayed_until)

    def approximate_number_of_messages_not_visible(self) -> int:
        now = models.unix_time_millis()
        return sum(1 for message in self._messages if not now > message.visible_at)

    def approximate_number_of_messages(self) -> int:
        return len(self.messages)

    def delete_message(self, receipt_handle: str) -> None:
        with deletes:
            if receipt_handle in self.deleted_messages:
                return  # already deleted: AWS (and moto) accept it again
            for index, message in enumerate(self._messages):
                if message.had_receipt_handle(receipt_handle):
                    self.pending_messages.discard(message)
                    self.deleted_messages.update(message.all_receipt_handles)
                    # In place: a message appended by a send meanwhile stays (appends only add at the end).
                    del self._messages[index]
                    return
            raise models.ReceiptHandleIsInvalid()

    def get_queue_attributes(self, queue_name: str, attribute_names: list[str]) -> dict:
        queue = self.get_queue(queue_name)
        if not attribute_names:
            return {}
        valid_names = ["All"] + queue.BASE_ATTRIBUTES + queue.FIFO_ATTRIBUTES + queue.KMS_ATTRIBUTES
        invalid_name = next((name for name in attribute_names if name not in valid_names), None)
        if invalid_name or invalid_name == "":
            raise models.InvalidAttributeName(invalid_name)
        current = queue.attributes
        if "All" in attribute_names:
            return current
        return {name: current[name] for name in attribute_names if current.get(name) is not None}

    def is_message_valid_based_on_retention_period(self, queue_name: str, message) -> bool:
        retention_period = self.get_queue(queue_name).message_retention_period
        return not retention_period + message.sent_timestamp / 1000 <= models.unix_time()

    queue_class.messages = property(messages)
    queue_class.approximate_number_of_messages_delayed = property(approximate_number_of_messages_delayed)
    queue_class.approximate_number_of_messages_not_visible = property(approximate_number_of_messages_not_visible)
    queue_class.approximate_number_of_messages = property(approximate_number_of_messages)
    queue_class.delete_message = delete_message
    backend_class.get_queue_attributes = get_queue_attributes
    backend_class.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
    queue_class._backup_cfn_queue_scans = True
