"""Issue 27's simulation: random interleavings of bookings, moves, cancels, confirmations,
receipts (repeated, reordered), STOP and START, provider faults, dying workers and a moving
clock, with the invariants checked after every step (tests/simulation/invariants.py); and
(issue 29) an email service's reports through anymail's webhooks and the clinic's webhook
endpoint with its faults and the integrations' sweep, lease and worker.

In CI it runs a fixed, derandomized set of examples (the same every run, no example database),
within about a minute and a half on PostgreSQL. A soak:

    SIMULATION_EXAMPLES=5000 pytest tests/simulation/test_simulation.py -s
    SIMULATION_EXAMPLES=5000 SIMULATION_SEED=1234 pytest tests/simulation/test_simulation.py -s

draws random seeds (or the one given), prints the seed first and the figures last. A failure
prints the shrunk steps, the seed and a @reproduce_failure blob."""

import os
import random
import time

from hypothesis import HealthCheck, seed
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import run_state_machine_as_test

from tests.simulation.invariants import FIRST_SEEN, VIOLATIONS
from tests.simulation.timing import SLOWEST, STATS

# About 75 s on PostgreSQL on the 2-core machine shared with other suites (docs/RELIABILITY.md).
CI_EXAMPLES = 25
CI_STEPS = 30


def test_simulation_holds_every_invariant(simulation):
    examples = int(os.environ.get("SIMULATION_EXAMPLES", "0"))
    soak = examples > 0
    machine = type("Simulation", (simulation,), {})
    if soak:
        chosen = int(os.environ.get("SIMULATION_SEED") or random.SystemRandom().getrandbits(64))
        print(f"SIMULATION seed={chosen} (SIMULATION_SEED={chosen} replays this run)")
        machine = seed(chosen)(machine)
    STATS.clear()
    VIOLATIONS.clear()
    FIRST_SEEN.clear()
    SLOWEST.update(seconds=0.0, step="")
    started = time.monotonic()
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=examples or CI_EXAMPLES,
            stateful_step_count=int(os.environ.get("SIMULATION_STEPS", "0")) or CI_STEPS,
            derandomize=not soak,
            database=None,
            deadline=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    print(
        f"SIMULATION examples={STATS['examples']} steps={STATS['steps']} messages={STATS['messages']} "
        f"violations={sum(VIOLATIONS.values())} slowest_step={SLOWEST['step']}:{SLOWEST['seconds']:.2f}s "
        f"seconds={time.monotonic() - started:.0f}"
    )
    for invariant, count in VIOLATIONS.items():
        print(f"SIMULATION relaxed invariant {invariant!r}: {count} violation(s); first: {FIRST_SEEN[invariant]}")
    assert not VIOLATIONS, f"relaxed invariants were violated: {dict(VIOLATIONS)}"
