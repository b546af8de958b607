"""What the machine itself did during a benchmark: time the hypervisor gave this VM's CPUs to others.

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
