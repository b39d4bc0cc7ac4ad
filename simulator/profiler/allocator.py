"""The host's memory allocator while models are timed: glibc's malloc held steady.

Eager PyTorch on a CPU allocates every activation afresh and frees it after the next kernel. With glibc's default
settings, malloc serves large blocks with ``mmap`` and returns the top of its heap to the kernel on ``free`` once it
exceeds a trim threshold, and it moves both thresholds as the program runs (the mmap threshold follows the largest
block freed so far). So the same call touches fresh pages, and pays a page fault per 4 KiB page, or reuses warm
memory, depending on the sizes allocated before it in the process. Measured on this project's 2-vCPU EPYC VM
(`docs/profiles.md`): a Fashion-MNIST member (width 32) made 430-1,540 page faults per call at batch 8-16, its
latency jumped by 37% from batch 10 to batch 11 in one profile and from batch 14 to 15 in the next, and
MobileNet-v3 at batch 1 made 0 or 2,000-2,300 faults per call depending on what the process had run before.

``steady`` fixes both thresholds at 1 GiB (``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``), which also
stops glibc from moving them: blocks are reused from the heap and no call faults once warm, as with the caching
allocators (jemalloc, tcmalloc) that CPU inference deployments load. The setting is process-wide and stays until the
process ends; a profile records which allocator it was measured with (``provenance.allocator``), and the real runner
sets the same, so that a profile and the runs it predicts see the same allocator. ``default`` leaves the C library
as it is (to measure a deployment that keeps glibc's defaults); it cannot follow ``steady`` in one process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from simulator.errors import require

ALLOCATORS = ("steady", "default")

#: glibc's mallopt parameters (malloc.h) and the value `steady` gives both thresholds (bytes).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
STEADY_THRESHOLD_BYTES = 1 << 30

_state = {"facts": None}  # what the last `set_allocator` of this process did (held steady: cannot be undone)


def check_allocator(name: str) -> str:
    """`name` if it is a known allocator setting; FlexsimError naming it otherwise."""
    require(name in ALLOCATORS, f"invalid allocator = {name!r}: must be one of {', '.join(ALLOCATORS)}")
    return name


def set_allocator(name: str) -> dict:
    """Apply allocator setting `name` (`ALLOCATORS`) to this process; return what was done, for provenance.

    Returns
    -------
    dict
        ``allocator`` (the setting asked for), ``library`` (the C library), ``applied`` (whether malloc's settings
        were changed), the thresholds where they were, and ``note`` where nothing could be applied, or where
        ``LD_PRELOAD`` may put another allocator in front of the C library's.
    """
    check_allocator(name)
    require(not (name == "default" and held_steady()), "allocator = 'default' asked for, but this process "
            "already holds glibc's malloc steady (it cannot be undone): measure in a fresh process")
    libc_name, libc_version = platform.libc_ver()
    facts = {"allocator": name, "library": f"{libc_name} {libc_version}".strip() or "unknown", "applied": False}
    if os.environ.get("LD_PRELOAD"):
        facts["note"] = f"LD_PRELOAD={os.environ['LD_PRELOAD']} may replace the C library's malloc"
    if name == "default":
        return _record(facts)
    if libc_name != "glibc":
        return _record({**facts, "note": "not glibc: its malloc settings were left as they are"})
    mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    ok = [mallopt(param, STEADY_THRESHOLD_BYTES) == 1 for param in (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)]
    if not all(ok):
        return _record({**facts, "note": "glibc refused mallopt(M_MMAP_THRESHOLD / M_TRIM_THRESHOLD)"})
    return _record({**facts, "applied": True, "mmap_threshold_bytes": STEADY_THRESHOLD_BYTES,
                    "trim_threshold_bytes": STEADY_THRESHOLD_BYTES})


def _record(facts: dict) -> dict:
    if not held_steady():
        _state["facts"] = facts
    return facts


def held_steady() -> bool:
    """Whether this process's malloc has been held steady."""
    return bool(_state["facts"] and _state["facts"]["applied"])


def allocator_facts() -> dict:
    """What this process's allocator is: the record of the last `set_allocator` (the steady one once applied), or
    the C library's defaults where it was never called."""
    return dict(_state["facts"] or {"allocator": "default", "applied": False, "note": "set_allocator never called"})
