"""Keeping freed memory: a training step makes the same large arrays again in the next step.

glibc's malloc gives every freed block of more than 32 MB straight back to the kernel, so NumPy's next array of
that size is fresh memory, which the kernel maps page by page as it is first written, zeroing each page (and,
with transparent huge pages, sometimes compacting memory first to find 2 MB ones). At batch 32 the paper AlexNet
frees and makes a dozen such arrays a step (conv1's, relu1's and norm1's outputs and their gradients: 37 MB
each): 1,400-2,600 page faults a step on this project's 2-core machine, relu1's forward 15-29 ms instead of 3
(2026-12-01).

keep_freed_memory() has malloc take every block from its heap (mallopt M_MMAP_MAX = 0) and keep up to `keep`
bytes free at the heap's top instead of trimming them (M_TRIM_THRESHOLD): the next step reuses pages the process
already has. tinycnn calls it once, at import. What it costs, for the whole process, every library in it:
- memory the program frees stays with the process for its next arrays. Not only up to `keep`: a freed block
  below one still in use is never returned by malloc on its own, so a process keeps its peak. Call
  return_freed_memory() (malloc_trim) to give back what is free now, e.g. after a large evaluation batch.
- a child made by fork (multiprocessing's default on Linux) shares the parent's freed pages until it writes
  them, and then copies each one (a page fault each, as for fresh memory, plus the copy).
- in threads other than the main one, malloc still maps blocks over 64 MB afresh (its per-thread heaps have
  that size): there the gain goes away, nothing breaks.
To keep glibc's own behaviour, set TINYCNN_FREED_MEMORY=return before importing tinycnn; a MALLOC_* variable
or a glibc.malloc tunable in GLIBC_TUNABLES of the user's own also leaves malloc as the user set it. Without
glibc (macOS, Windows, musl) nothing changes.
"""
import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4          # mallopt's parameters, from glibc's malloc.h


def _glibc():
    """glibc as a ctypes library, or None (another C library; musl answers any libc.so name but has no mallopt)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim
    except (AttributeError, OSError, ValueError):
        return None
    return libc


def _users_own_settings():
    """True if the environment already says how malloc should behave."""
    return (any(name.startswith("MALLOC_") for name in os.environ)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def keep_freed_memory(keep=2**31 - 1):
    """Have glibc's malloc keep freed memory for reuse (see the module's docstring). keep: the most bytes kept
    free at the heap's top (mallopt takes an int). -> True if the settings were made, False if malloc was left
    alone (no glibc, TINYCNN_FREED_MEMORY=return, or the user's own MALLOC_* or glibc.malloc settings)."""
    if not 0 <= keep <= 2**31 - 1:
        raise ValueError(f"keep_freed_memory: keep must be 0 to 2**31 - 1 bytes (mallopt's int), got {keep}")
    choice = os.environ.get("TINYCNN_FREED_MEMORY", "keep")
    if choice not in ("keep", "return"):
        raise ValueError(f"TINYCNN_FREED_MEMORY: expected 'keep' or 'return', got {choice!r}")
    libc = _glibc()
    if choice == "return" or _users_own_settings() or libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, keep))


def return_freed_memory():
    """Give the memory malloc holds free back to the system now (glibc's malloc_trim(0), which also returns free
    pages between blocks still in use). -> True if some was returned; False without glibc."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
