"""The simulation's figures across examples (the soak prints them): examples, steps, messages
that reached a recipient, and the slowest step."""

import functools
import time
from collections import Counter

STATS = Counter()
SLOWEST = {"seconds": 0.0, "step": ""}


def step(function):
    """A rule's body, timed; a failure marks the run failed (teardown then skips the drain)."""

    @functools.wraps(function)
    def run(self, **kwargs):
        started = time.monotonic()
        try:
            return function(self, **kwargs)
        except BaseException:
            self.failed = True
            raise
        finally:
            elapsed = time.monotonic() - started
            STATS["steps"] += 1
            if elapsed > SLOWEST["seconds"]:
                SLOWEST.update(seconds=elapsed, step=function.__name__)

    return run
