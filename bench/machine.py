"""What the machine did during a benchmark: CPU time of processes, and time the hypervisor gave this
VM's CPUs to others.

On a virtual machine, "steal" is time a CPU of this guest was ready to run but the host ran
something else. A benchmark run with much steal measures the neighbours as much as the code: the
scripts print it beside their figures, so that a slow run on a starved machine is seen as such.
"""

import os
from pathlib import Path


def steal_seconds() -> float:
    """CPU time stolen from this machine's CPUs so far, summed over them (0 where not reported)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def steal_line(stolen_s: float, wall_s: float) -> str:
    """`stolen_s` of steal over `wall_s` of wall time, as a share of all CPUs."""
    share = stolen_s / (wall_s * (os.cpu_count() or 1)) if wall_s > 0 else 0.0
    return f"CPU steal meanwhile: {stolen_s:.1f} s ({share:.0%} of the machine's {os.cpu_count()} CPUs)"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def _stat_cpu_seconds(stat: str) -> float:
    """utime + stime of a `/proc/PID/stat` line, in seconds."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time used so far by every PostgreSQL process of this machine (its backends come and go,
    so this undercounts backends that exited; the benchmark's own database is the only busy one)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            total += _stat_cpu_seconds(text)
    return total
