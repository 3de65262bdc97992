"""Freed memory kept for reuse (tinycnn/memory.py): a large array made again after one is freed takes the pages
the process already has, unless the user asked for glibc's own behaviour."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from tinycnn.memory import keep_freed_memory

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


def faults_remaking_a_large_array(**env):
    done = subprocess.run([sys.executable, "-c", REMAKE], env=dict(os.environ, **env), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_large_array_made_again_reuses_the_freed_pages_unless_told_to_return_them():
    assert faults_remaking_a_large_array() < 12
    assert faults_remaking_a_large_array(TINYCNN_FREED_MEMORY="return") >= 24
    assert faults_remaking_a_large_array(MALLOC_TRIM_THRESHOLD_="131072") >= 24     # the user's own setting stands


def test_a_misspelt_choice_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("TINYCNN_FREED_MEMORY", "retrun")
    with pytest.raises(ValueError, match="TINYCNN_FREED_MEMORY: expected 'keep' or 'return', got 'retrun'"):
        keep_freed_memory()
    monkeypatch.setenv("TINYCNN_FREED_MEMORY", "return")
    assert keep_freed_memory() is False
