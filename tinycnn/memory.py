"""Keeping freed memory: a training step makes the same large arrays again in the next step.

glibc's malloc gives every freed block of more than 32 MB straight back to the kernel, so NumPy's next array of
that size is fresh memory, which the kernel maps page by page as it is first written, zeroing each page (and,
with transparent huge pages, sometimes compacting memory first to find 2 MB ones). At batch 32 the paper AlexNet
frees and makes a dozen such arrays a step (conv1's, relu1's and norm1's outputs and their gradients: 37 MB
each): 1,400-2,600 page faults a step on this project's 2-core machine, relu1's forward 15-29 ms instead of 3
(2026-12-01).

keep_freed_memory() has malloc take every block from its heap (mallopt M_MMAP_MAX = 0) and keep up to
`keep` bytes free at the heap's top instead of returning them (M_TRIM_THRESHOLD): the next step reuses pages
the process already has. tinycnn calls it once, at import. The cost: memory the program frees stays with the
process, for its next arrays, instead of going back to the system (as with jemalloc and tcmalloc, the
allocators that CPU guides for PyTorch recommend for the same reason). To keep glibc's own behaviour, set
TINYCNN_FREED_MEMORY=return before importing tinycnn, or any of glibc's MALLOC_* or GLIBC_TUNABLES variables,
which it then leaves alone. Without glibc (macOS, Windows, musl) nothing changes.
"""
import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4          # mallopt's parameters, from glibc's malloc.h
ALLOCATOR_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                      "GLIBC_TUNABLES")


def keep_freed_memory(keep=2**31 - 1):
    """Have glibc's malloc keep freed memory for reuse (see the module's docstring). keep: the most bytes kept
    free at the heap's top (mallopt takes an int). -> True if the settings were made, False if they were left
    alone (no glibc, TINYCNN_FREED_MEMORY=return, or the user's own MALLOC_* or GLIBC_TUNABLES settings)."""
    choice = os.environ.get("TINYCNN_FREED_MEMORY", "keep")
    if choice not in ("keep", "return"):
        raise ValueError(f"TINYCNN_FREED_MEMORY: expected 'keep' or 'return', got {choice!r}")
    if choice == "return" or any(name in os.environ for name in ALLOCATOR_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")                # glibc's name; macOS, Windows and musl have none
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, keep))
