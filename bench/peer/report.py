"""The peer comparison as one Markdown table (medians by side and mode, and their ratios), with
every run listed below it."""

import datetime
import os
import platform
import statistics
from dataclasses import dataclass

from bench.report import _markdown

from .measure import __doc__ as WINDOWS
from .pipeline import __doc__ as PIPELINE_WINDOWS


@dataclass
class Results:
    options: object
    sends: list
    floor: dict  # our single process's floor: part, CPU ms each
    load: tuple
    pipelines: list = ()  # the end-to-end runs


def pipeline_table(results):
    """The end-to-end runs: a row per mode and side, medians of the runs that delivered every
    email once, and ours as a ratio of post-office's."""
    if not results.pipelines:
        return ""
    rows = [
        (
            "Mode",
            "Side",
            "emails/s",
            "÷ post-office",
            "CPU ms/email: processes",
            "PostgreSQL",
            "Redis",
            "all",
            "all ÷ post-office",
        )
    ]
    sides = list(dict.fromkeys(run.side for run in results.pipelines))
    for processes in sorted({run.processes for run in results.pipelines}):
        medians = {}
        for side in sides:
            good = [r for r in results.pipelines if r.side == side and r.processes == processes and not r.problem]
            if good:
                medians[side] = {
                    "per_s": statistics.median(r.per_s for r in good),
                    **{part: statistics.median(r.cpu_ms(part) for r in good) for part in PARTS},
                }
        peer = medians.get("post-office")
        for side, m in medians.items():
            rows.append(
                (
                    "1 process" if processes == 1 else f"{processes} processes",
                    side,
                    f"{m['per_s']:,.0f}",
                    f"{m['per_s'] / peer['per_s']:.2f}×" if peer else "",
                    *(f"{m[part]:.2f}" for part in PARTS),
                    f"{m[None] / peer[None]:.2f}×" if peer else "",
                )
            )
    failures = [f"- {r.side} × {r.processes}: {r.problem}" for r in results.pipelines if r.problem]
    return "End to end:\n\n" + _markdown(rows) + ("\n\nFailed runs:\n" + "\n".join(failures) if failures else "")


PARTS = ("processes", "PostgreSQL", "Redis", None)  # None: all of them


def table(results):
    """A row per mode and side: medians, and ours as a ratio of post-office's."""
    if not results.sends:
        return ""
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
    sends = [
        f"{s.side} × {s.processes}: {s.per_s:,.0f} emails/s, {s.cpu_ms:.2f} ms CPU/email, "
        f"{s.connections:,} connections, {s.seconds:.2f} s"
        for s in results.sends
    ]
    pipelines = [
        f"end to end, {r.side} × {r.processes}: {r.per_s:,.0f} emails/s, {r.cpu_ms():.2f} ms CPU/email "
        f"(processes {r.cpu_ms('processes'):.2f}, PostgreSQL {r.cpu_ms('PostgreSQL'):.2f}, Redis "
        f"{r.cpu_ms('Redis'):.2f}), {r.emails:,} delivered, {r.seconds:.2f} s{'; ' + r.problem if r.problem else ''}"
        for r in results.pipelines
    ]
    return "\n".join(f"{i}. {line}" for i, line in enumerate(sends + pipelines, 1))


def section(results, table_text):
    options = results.options
    return (
        f"- Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}\n"
        f"- Load average (1 min): {results.load[0]:.1f} at the start, {results.load[1]:.1f} at the end\n"
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Command: `{options.command}` ({options.emails:,} emails a run, {options.pairs} alternating rounds "
        f"a mode, medians)\n\n"
        + (f"{WINDOWS.strip()}\n\n" if results.sends else "")
        + (f"{PIPELINE_WINDOWS.strip()}\n\n" if results.pipelines else "")
        + f"{table_text}\n\nEvery run, in order:\n\n{runs(results)}\n"
    )
