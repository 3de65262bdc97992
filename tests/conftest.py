import os

from hypothesis import HealthCheck, settings

# Numba compiles each kernel signature on first use (seconds, cached on disk after), so no per-example deadline.
# TINYCNN_EXAMPLES raises the number of examples for a deeper run: TINYCNN_EXAMPLES=500 pytest
# Locally every run draws new examples (and replays past failures from .hypothesis/). Under CI (CI set, as
# .ci/run sets it) the "ci" profile draws the same examples every time, so a red run can be reproduced.
common = dict(deadline=None, print_blob=True, max_examples=int(os.environ.get("TINYCNN_EXAMPLES", 25)),
              suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("tinycnn", derandomize=False, **common)
settings.register_profile("ci", derandomize=True, database=None, **common)
settings.load_profile("ci" if "CI" in os.environ else "tinycnn")


def pytest_terminal_summary(terminalreporter):
    """Say it when tests that compare with PyTorch were skipped: their oracle is missing, not their proof."""
    skipped = [report for report in terminalreporter.stats.get("skipped", [])
               if "torch" in str(report.longrepr).lower()]
    if skipped:
        terminalreporter.write_line(f"PyTorch oracle: {len(skipped)} comparison(s) with PyTorch skipped, torch is not "
                                    f"installed (python -m pip install '.[torch]' runs them)", yellow=True, bold=True)
