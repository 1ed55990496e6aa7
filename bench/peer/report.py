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
    load: tuple


def table(results):
    rows = [
        (
            "Mode",
            "post-office emails/s",
            "ours emails/s",
            "ours ÷ post-office",
            "CPU ms/email post-office",
            "CPU ms/email ours",
            "CPU ours ÷ post-office",
            "SMTP connections post-office / ours",
        )
    ]
    for processes in sorted({send.processes for send in results.sends}):
        peer = _medians([s for s in results.sends if s.side == "post-office" and s.processes == processes])
        ours = _medians([s for s in results.sends if s.side == "ours" and s.processes == processes])
        mode = "1 process" if processes == 1 else f"{processes} processes"
        rows.append(
            (
                mode,
                f"{peer['per_s']:,.0f}",
                f"{ours['per_s']:,.0f}",
                f"{ours['per_s'] / peer['per_s']:.2f}×",
                f"{peer['cpu_ms']:.2f}",
                f"{ours['cpu_ms']:.2f}",
                f"{ours['cpu_ms'] / peer['cpu_ms']:.2f}×",
                f"{peer['connections']:,.0f} / {ours['connections']:,.0f}",
            )
        )
    problems = [f"- {s.side} × {s.processes}: {s.problem}" for s in results.sends if s.problem]
    return _markdown(rows) + ("\n\nProblems:\n" + "\n".join(problems) if problems else "")


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
        f"- Command: `{options.command}` ({options.emails:,} emails a run, {options.pairs} alternating pairs "
        f"a mode, medians)\n\n"
        f"{WINDOWS.strip()}\n\n"
        f"{table_text}\n\nEvery run, in order:\n\n{runs(results)}\n"
    )
