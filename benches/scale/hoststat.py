"""What the host did to this VM, from /proc/stat: shared by the scale harness's scripts."""

from __future__ import annotations

import os


def steal_s() -> float:
    """CPU time the hypervisor gave this VM's virtual CPUs to other guests, all cores, in s
    (the `cpu` line's 8th field). Taken before and after a window, it says how much of the
    machine the window really had."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
