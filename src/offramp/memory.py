"""Returning freed heap memory to the operating system.

Loading models and running torch leave many freed blocks inside glibc's malloc arenas,
which stay resident. ``release_free_heap`` hands them back, so a server's resident size
reflects what it holds, not what it once touched. A no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import functools
import gc


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - probe for the symbol
    except (OSError, AttributeError):
        return None
    return libc


def release_free_heap(*, collect: bool = False) -> None:
    """Trim malloc's free pages; with ``collect`` run a full garbage collection first."""
    if collect:
        gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
