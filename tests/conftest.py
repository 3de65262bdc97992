import os

from hypothesis import HealthCheck, settings

# Numba compiles each kernel signature on first use (seconds, cached on disk after), so no per-example deadline.
# TINYCNN_EXAMPLES raises the number of examples for a deeper run: TINYCNN_EXAMPLES=500 pytest
settings.register_profile("tinycnn", deadline=None, print_blob=True,
                          max_examples=int(os.environ.get("TINYCNN_EXAMPLES", 25)),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tinycnn")
