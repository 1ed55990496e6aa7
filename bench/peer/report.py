"""The peer comparison as one Markdown table (medians by side and mode, and their ratios), with
every run listed below it."""

import datetime
import os
import platform
import statistics
from dataclasses import dataclass

from bench.report import _markdown

from .measure import __doc__ as WINDOWS


@dataclass
class Results:
    options: object
    sends: list
    floor: dict  # our single process's floor: part, CPU ms each
    load: tuple


def table(results):
    """A row per mode and side: medians, and ours as a ratio of post-office's."""
    rows = [("Mode", "Side", "emails/s", "÷ post-office", "CPU ms/email", "CPU ÷ post-office", "SMTP connections")]
    sides = list(dict.fromkeys(send.side for send in results.sends))
    for processes in sorted({send.processes for send in results.sends}):
        mode = "1 process" if processes == 1 else f"{processes} processes"
        medians = {
            side: _medians([s for s in results.sends if s.side == side and s.processes == processes]) for side in sides
        }
        peer = medians["post-office"]
        for side, median in medians.items():
            rows.append(
                (
                    mode,
                    side,
                    f"{median['per_s']:,.0f}",
                    f"{median['per_s'] / peer['per_s']:.2f}×",
                    f"{median['cpu_ms']:.2f}",
                    f"{median['cpu_ms'] / peer['cpu_ms']:.2f}×",
                    f"{median['connections']:,.0f}",
                )
            )
    problems = [f"- {s.side} × {s.processes}: {s.problem}" for s in results.sends if s.problem]
    return _markdown(rows) + _floor(results) + ("\n\nProblems:\n" + "\n".join(problems) if problems else "")


def _floor(results):
    """Our one process's floor against the CPU per email that would send 1.5× post-office's rate
    on the one core a Python process holds."""
    peer = _medians([s for s in results.sends if s.side == "post-office" and s.processes == 1])["cpu_ms"]
    parts = ", ".join(f"{part} {ms:.2f} ms" for part, ms in results.floor.items())
    return (
        f"\n\nOur floor in one process ({results.options.floor_count:,} of each, this process's CPU; no claim, "
        f"no database, no start-up): {parts}, {sum(results.floor.values()):.2f} ms together. Sending 1.5× "
        f"post-office's rate on one core allows {peer / 1.5:.2f} ms an email in all (post-office's {peer:.2f} ÷ 1.5)."
    )


def _medians(sends):
    return {name: statistics.median(getattr(s, name) for s in sends) for name in ("per_s", "cpu_ms", "connections")}


def runs(results):
    return "\n".join(
        f"{i}. {s.side} × {s.processes}: {s.per_s:,.0f} emails/s, {s.cpu_ms:.2f} ms CPU/email, "
        f"{s.connections:,} connections, {s.seconds:.2f} s"
        for i, s in enumerate(results.sends, 1)
    )


def section(results, table_text):
    options = results.options
    return (
        f"- Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}\n"
        f"- Load average (1 min): {results.load[0]:.1f} at the start, {results.load[1]:.1f} at the end\n"
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Command: `{options.command}` ({options.emails:,} emails a run, {options.pairs} alternating rounds "
        f"a mode, medians)\n\n"
        f"{WINDOWS.strip()}\n\n"
        f"{table_text}\n\nEvery run, in order:\n\n{runs(results)}\n"
    )
