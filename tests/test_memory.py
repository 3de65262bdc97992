"""Freed memory kept for reuse (tinycnn/memory.py): a large array made again after one is freed takes the pages
the process already has, unless the user asked for glibc's own behaviour; and what is kept can be given back."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from tinycnn import memory
from tinycnn.memory import keep_freed_memory, return_freed_memory

# judged apart from memory._glibc(), so that a _glibc() that misses glibc fails these tests instead of skipping them
glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

# Page faults while a 48 MB array, made after one of the same size was freed, is written: none when malloc
# reuses its heap; one a 4 kB page (12,288) or one a 2 MB huge page (24) when the kernel maps it afresh.
REMAKE = textwrap.dedent("""
    import resource
    import numpy as np
    import tinycnn
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(12 * 2**20, np.float32)
    del a
    before = faults()
    b = np.ones(12 * 2**20, np.float32)
    print(faults() - before)
""")

# Resident MB after three 64 MB arrays are freed below a small one still in use, then after return_freed_memory().
PINNED = textwrap.dedent("""
    import numpy as np
    import tinycnn
    from tinycnn.memory import return_freed_memory
    def resident_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20
    arrays = [np.ones(16 * 2**20, np.float32) for _ in range(3)]
    pin = np.ones(1000, np.float32)
    del arrays
    kept = resident_mb()
    returned = return_freed_memory()
    print(kept, resident_mb(), returned)
""")


def says_how_malloc_behaves(name):
    """An environment variable that tinycnn or glibc reads for malloc's settings."""
    return name.startswith("MALLOC_") or name in ("GLIBC_TUNABLES", "TINYCNN_FREED_MEMORY")


def run(script, **env):
    """Run script in a fresh Python whose environment has no allocator settings but those in env."""
    clean = {name: value for name, value in os.environ.items() if not says_how_malloc_behaves(name)}
    done = subprocess.run([sys.executable, "-c", script], env=dict(clean, **env), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def faults_remaking_a_large_array(**env):
    return int(run(REMAKE, **env)[0])


@glibc
def test_a_large_array_made_again_reuses_the_freed_pages_unless_told_to_return_them():
    assert faults_remaking_a_large_array() < 12
    assert faults_remaking_a_large_array(GLIBC_TUNABLES="glibc.pthread.rseq=0") < 12    # not about malloc
    assert faults_remaking_a_large_array(TINYCNN_FREED_MEMORY="return") >= 24
    assert faults_remaking_a_large_array(MALLOC_TRIM_THRESHOLD_="131072") >= 24          # the user's own setting
    assert faults_remaking_a_large_array(MALLOC_ARENA_MAX="2") >= 24                     # any MALLOC_* variable
    assert faults_remaking_a_large_array(GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072") >= 24


@glibc
def test_memory_kept_below_a_block_in_use_is_given_back_on_request():
    kept, after, returned = run(PINNED)
    assert float(kept) - float(after) >= 150 and returned == "True"


def test_a_misspelt_choice_or_a_size_mallopt_cannot_take_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("TINYCNN_FREED_MEMORY", "retrun")
    with pytest.raises(ValueError, match="TINYCNN_FREED_MEMORY: expected 'keep' or 'return', got 'retrun'"):
        keep_freed_memory()
    monkeypatch.setenv("TINYCNN_FREED_MEMORY", "return")
    assert keep_freed_memory() is False
    with pytest.raises(ValueError, match=r"keep must be 0 to 2\*\*31 - 1 bytes \(mallopt's int\), got 2147483648"):
        keep_freed_memory(keep=2**31)


@glibc
def test_the_settings_are_made_where_nothing_says_otherwise(monkeypatch):
    for name in filter(says_how_malloc_behaves, list(os.environ)):
        monkeypatch.delenv(name)
    assert keep_freed_memory() is True


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch):
    """musl loads for any libc.so name and has no mallopt: tinycnn then changes nothing, and imports."""
    class Musl:
        pass
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: Musl())
    monkeypatch.delenv("TINYCNN_FREED_MEMORY", raising=False)
    assert memory._glibc() is None
    assert keep_freed_memory() is False and return_freed_memory() is False
