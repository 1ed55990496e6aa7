"""Replaying a simulation's steps as a plain test: each rule called by name, as hypothesis
prints a failing run, with the invariants checked after every step and, at finish(), the drain
and the end's invariants, as the simulation does."""


class Replay:
    def __init__(self, simulation):
        self.state = simulation()
        self.state.invariants_hold()
        self.finished = False

    def __getattr__(self, name):
        rule = getattr(self.state, name)

        def run(**kwargs):
            try:
                rule(**kwargs)
                self.state.invariants_hold()
            except BaseException:
                self.state.failed = True
                raise

        return run

    def finish(self):
        """Drain (the clock past every lease and backoff, sweeping until quiet) and check the end."""
        self.finished = True
        self.state.teardown()

    def close(self):
        if not self.finished:
            self.state.failed = True  # nothing more to check: only roll back
            self.state.teardown()
