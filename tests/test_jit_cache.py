"""kernels/jit.py is the one place that says how kernels compile, and numba caches the machine code on disk:
a change of the options there must reach the code that runs, not be hidden by the cache."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = '''
from tinycnn.kernels.jit import kernel

@kernel
def divide(a, b):
    return a / b

try:
    quotient = divide(1.0, 0.0)
except ZeroDivisionError:
    quotient = "ZeroDivisionError"
print(quotient, sum(divide.stats.cache_hits.values()))
'''


def run_probe(tree):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", "NUMBA_CACHE_DIR")}
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run([sys.executable, str(tree / "probe.py")], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_changing_the_compile_options_recompiles_the_cached_kernels(tmp_path):
    """error_model="numpy" makes 1/0 inf; switched to "python" in jit.py it must raise, though the kernel's own
    file is unchanged and its machine code for "numpy" is in the cache."""
    shutil.copytree(os.path.join(ROOT, "tinycnn"), tmp_path / "tinycnn", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "probe.py").write_text(PROBE)
    assert run_probe(tmp_path) == ["inf", "0"]               # compiled and cached
    assert run_probe(tmp_path) == ["inf", "1"]               # from the cache
    jit = tmp_path / "tinycnn" / "kernels" / "jit.py"
    source = jit.read_text()
    assert 'error_model="numpy"' in source
    jit.write_text(source.replace('error_model="numpy"', 'error_model="python"'))
    assert run_probe(tmp_path) == ["ZeroDivisionError", "0"]
