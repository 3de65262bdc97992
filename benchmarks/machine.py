"""What the benchmark ran on: the CPU, its vector extensions, the versions, the threads and the BLAS kernel.

A speed claim holds only on the machine it was measured on, so every report starts with this.
"""
import os
import platform


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def vector_extensions():
    """"AVX-512", "AVX2" or "neither", from the CPU flags the kernel reports."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        flags = []
    if "avx512f" in flags:
        return "AVX-512"
    return "AVX2" if "avx2" in flags else "neither AVX2 nor AVX-512"


def blas_kernel():
    """OpenBLAS's version and the kernel it picked (threadpoolctl), or why it cannot be told."""
    try:
        import numpy as np
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see it)"
    np.ones((2, 2)) @ np.ones((2, 2))                   # make numpy load its BLAS
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return f"{pool.get('internal_api')} {pool.get('version')}, kernel {pool.get('architecture')}"
    return "no BLAS found"


def describe(threads):
    import numba
    import numpy as np
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    try:
        import llvmlite.binding as llvm
        target = numba.config.CPU_NAME or llvm.get_host_cpu_name()     # NUMBA_CPU_NAME: compiling for another CPU
    except Exception:                                   # numba's target CPU is only informative
        target = "unknown"
    from tinycnn.kernels import vector
    return (f"CPU: {cpu_model()} ({vector_extensions()}; numba compiles for {target}, tinycnn's GEMM uses "
            f"{vector.VECTOR_BYTES}-byte vectors), {os.cpu_count()} cores, {threads} threads\n"
            f"numpy {np.__version__}, numba {numba.__version__}, PyTorch {torch_version}, Python "
            f"{platform.python_version()}\nnp.matmul: {blas_kernel()}")
