"""The OpenMP runtime that torch and llama.cpp share in one process.

torch's CPU wheels ship ``libgomp.so.1`` and llama.cpp's CPU backend links the same
soname, so whichever loads first serves both. libgomp counts every thread of every live
team, idle ones included, and once that count exceeds the CPUs it stops spinning at its
barriers and sleeps in the kernel instead. A torch pass leaves its team parked on the
thread that ran it (the embedding thread), so from then on every llama.cpp decode step
paid those sleeps: one stream decoded at ~0.35x of its speed on 2 cores
(bench/README.md, "Embeddings beside decoding"). ``release_team`` ends the calling
thread's team after its torch work; the next pass starts one again (tens of
microseconds, against milliseconds of work).
"""

from __future__ import annotations

import ctypes
import functools
import os

_OMP_PAUSE_SOFT = 1  # omp_pause_resource_kind: give the threads back, keep nothing


@functools.cache
def _gomp() -> ctypes.CDLL | None:
    """libgomp if this process has loaded it (never loads it), with OpenMP 5's pause."""
    try:
        lib = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD)
        lib.omp_pause_resource_all.argtypes = [ctypes.c_int]
        lib.omp_pause_resource_all.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


def release_team() -> bool:
    """End the OpenMP team the calling thread leads, if any (call outside parallel
    regions, after torch work); True when libgomp took the request."""
    lib = _gomp()
    return lib is not None and lib.omp_pause_resource_all(_OMP_PAUSE_SOFT) == 0
