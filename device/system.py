"""Readings of the device itself: CPU temperature (where readable) and resident memory."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature_c(path: Path = THERMAL_ZONE) -> float | None:
    """CPU temperature in °C from the kernel's thermal zone (Raspberry Pi OS has it), else None."""
    try:
        return round(int(path.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def resident_memory_mb() -> float:
    """Current resident set size in MB (from /proc where present, else the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024.0), 1)


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024.0), 1)
