"""The simulation's workers: delivery.deliver taken apart into its steps (a claim, one row's
attempt on a send thread, the write of the outcomes held), so that a worker can die, or stall
while the world moves on, between any two of them."""

from collections import deque
from concurrent.futures import ThreadPoolExecutor

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from notifications.channels import SendSession
from notifications.messages import catalog
from notifications.models import Notification, NotificationStatus
from notifications.outbox import delivery, sweeps
from notifications.outbox.models import record_send_starts
from tests.simulation.timing import step


class Worker:
    """A worker's claimed rows not yet handed out, and the outcomes it has not yet written."""

    def __init__(self):
        self.rows = deque()
        self.outcomes = []
        # A stalled worker's read of the appointments serves all its hand-outs: the worst case
        # of the real-time CURRENT_STATE_MAX_AGE, and decided by the steps alone, not by the clock.
        self.current = delivery._CurrentState(lookahead=1, max_age=float("inf"))
        self.session = SendSession()
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="sim-send")

    def close(self):
        self.thread.shutdown()
        self.session.close()


class WorkerRules:
    """The rules of two workers, self.workers (a Simulation's)."""

    @rule(w=st.sampled_from([0, 1]), limit=st.integers(1, 3))
    @step
    def worker_claims(self, w, limit):
        worker = self.workers[w]
        claimed = sweeps.claim_due_batch(limit)
        worker.current.offer(claimed)
        worker.rows.extend(claimed)

    @precondition(lambda self: any(worker.rows for worker in self.workers))
    @rule(w=st.sampled_from([0, 1]))
    @step
    def worker_sends(self, w):
        """The worker hands its next row to a send thread, and holds the outcome."""
        worker = self.workers[w] if self.workers[w].rows else self.workers[1 - w]
        catalog.refresh()
        # As deliver hands a row out: its send's start recorded before the request.
        for row in record_send_starts(worker.current.take(worker.rows, 1)):
            worker.outcomes.append(worker.thread.submit(delivery._attempt, row, worker.session).result())

    @precondition(lambda self: any(worker.outcomes for worker in self.workers))
    @rule(w=st.sampled_from([0, 1]))
    @step
    def worker_writes(self, w):
        worker = self.workers[w] if self.workers[w].outcomes else self.workers[1 - w]
        outcomes = list(worker.outcomes)
        delivery._write(worker.outcomes)
        self._note_unwritten(outcomes)

    @precondition(lambda self: any(worker.rows or worker.outcomes for worker in self.workers))
    @rule(w=st.sampled_from([0, 1]))
    @step
    def worker_dies(self, w):
        """SIGKILL: its claimed rows abandoned, the outcomes of its sends never written."""
        worker = self.workers[w]
        self.unwritten_email_ids |= {
            o.fields["provider_message_id"]
            for o in worker.outcomes
            if o.fields["status"] == NotificationStatus.SENT and o.notification.channel == "email"
        }
        worker.close()
        self.workers[w] = Worker()

    def held_email_ids(self):
        """Emails a live worker sent and holds the outcome of: unwritten yet, and never written
        if the row was sent again meanwhile (its claim was lost to the lease)."""
        return {
            o.fields["provider_message_id"]
            for worker in self.workers
            for o in worker.outcomes
            if o.fields["status"] == NotificationStatus.SENT and o.notification.channel == "email"
        }

    def _note_unwritten(self, outcomes):
        """Emails whose outcome was written to no row (their claim had been taken over)."""
        for o in outcomes:
            if o.fields["status"] == NotificationStatus.SENT and o.notification.channel == "email":
                stored = Notification.objects.filter(pk=o.notification.pk).values_list("provider_message_id", flat=True)
                if stored.first() != o.fields["provider_message_id"]:
                    self.unwritten_email_ids.add(o.fields["provider_message_id"])
