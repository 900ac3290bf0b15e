"""How many CPUs this container may use: the cgroup CPU quota, not the node's core count.

``multiprocessing.cpu_count()`` answers the node's cores (4 on an e2-standard-4) while the
collector's container is limited to 1 CPU: four gunicorn workers would share one CPU's quota and
be throttled together. Kubernetes writes a CPU limit as a CFS quota: cgroup v2 ``cpu.max``
(``"<quota> <period>"`` or ``"max <period>"``), cgroup v1 ``cpu.cfs_quota_us`` (``-1`` = none)
over ``cpu.cfs_period_us`` (https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files,
https://docs.kernel.org/scheduler/sched-bwc.html).

Example:
    >>> cpus_from_cpu_max("150000 100000")
    1.5
    >>> cpus_from_cpu_max("max 100000") is None
    True
    >>> cpus_from_cfs("-1", "100000") is None
    True
    >>> cpus_from_cfs("200000", "100000")
    2.0
    >>> workers_for(1.5, node_cpus=4), workers_for(None, node_cpus=4), workers_for(0.5, node_cpus=4)
    (2, 4, 1)
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cpus_from_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line; None when unlimited."""
    quota, _, period = text.strip().partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def cpus_from_cfs(quota: str, period: str) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``; None if unlimited."""
    q = int(quota.strip())
    return None if q <= 0 else q / int(period.strip())


def container_cpus(root: Path = CGROUP) -> float | None:
    """The container's CPU limit from cgroup v2, else v1; None when there is none."""
    v2 = root / "cpu.max"
    if v2.is_file():
        return cpus_from_cpu_max(v2.read_text())
    v1 = root / "cpu" / "cpu.cfs_quota_us"
    if v1.is_file():
        return cpus_from_cfs(v1.read_text(), (root / "cpu" / "cpu.cfs_period_us").read_text())
    return None


def workers_for(cpus: float | None, node_cpus: int) -> int:
    """One worker per allowed CPU (rounded up, at least 1, at most the node's cores)."""
    if cpus is None:
        return max(1, node_cpus)
    return max(1, min(node_cpus, math.ceil(cpus)))


def default_workers(root: Path = CGROUP) -> int:
    """Worker count for this container."""
    return workers_for(container_cpus(root), os.cpu_count() or 1)
