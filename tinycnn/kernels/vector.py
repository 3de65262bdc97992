"""One vector register's worth of numbers: what the GEMM micro-kernel keeps its accumulators in.

A CPU multiplies 8 float32 at once in an AVX2 register (ymm, 32 bytes) and 16 in an AVX-512 register (zmm,
64 bytes). numba has no type for such a register, but LLVM has (<16 x float>), and numba lets a project
teach it new types and operations (numba.extending). Five operations are enough for a matrix product:

    zeros(a)          a vector of zeros of a's dtype
    load(a, i)        a[i : i + lanes]                   (a: 1-D, contiguous; i + lanes <= len(a))
    store(a, i, v)    a[i : i + lanes] = v
    fma(x, v, acc)    acc + x * v, x a scalar: one fused multiply-add per lane (one rounding)
    add(u, v)         u + v

lanes = VECTOR_BYTES / itemsize: 16 float32 or 8 float64 with AVX-512, 8 or 4 with AVX2. A kernel written
with these operations holds each vector variable in a register, so a tile of C can live in registers while k
runs (see gemm.py).

Each operation is first a plain Python function on NumPy arrays: that is what runs under NUMBA_DISABLE_JIT=1,
and it is the definition (its fma rounds twice, the product then the sum, so the last bits may differ from
the compiled one). The @overload below each gives numba the same operation as LLVM vector code, which checks
nothing at run time: the GEMM's loops keep every index in range.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic, models, overload, register_model


def _cpu_features():
    """The CPU features numba compiles for: NUMBA_CPU_FEATURES if set (e.g. to compile for another CPU), else
    the host's, as LLVM sees them ("+avx2,+fma,..."). """
    if config.CPU_FEATURES:
        return config.CPU_FEATURES
    import llvmlite.binding as llvm
    return llvm.get_host_cpu_features().flatten()


def vector_bytes(features):
    """The widest vector register in `features`: 64 bytes with AVX-512, 32 with AVX2 and FMA, else 16 (SSE,
    NEON). Any width is correct on any CPU, LLVM splitting a vector wider than the registers into several; the
    width is chosen for speed."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if "avx512f" in enabled:
        return 64
    return 32 if {"avx2", "fma"} <= enabled else 16


FEATURES = _cpu_features()
VECTOR_BYTES = vector_bytes(FEATURES)
_HAS_FMA = bool({"+fma", "+neon"} & set(FEATURES.split(",")))     # every 64-bit ARM with NEON has FMA


def lanes(dtype):
    """How many numbers of `dtype` one vector holds."""
    return VECTOR_BYTES // np.dtype(dtype).itemsize


def zeros(a):
    return np.zeros(lanes(a.dtype), a.dtype)


def load(a, i):
    assert 0 <= i and i + lanes(a.dtype) <= len(a), f"vector.load: a[{i}:{i + lanes(a.dtype)}] past len {len(a)}"
    return a[i:i + lanes(a.dtype)].copy()


def store(a, i, v):
    assert 0 <= i and i + len(v) <= len(a), f"vector.store: a[{i}:{i + len(v)}] past len {len(a)}"
    a[i:i + len(v)] = v


def fma(x, v, acc):
    return acc + x * v


def add(u, v):
    return u + v


# ---- numba's side: the type, and each operation as LLVM IR ----

class Vector(types.Type):
    """numba's type for `lanes` numbers of `dtype` (a numba float type) in one register."""

    def __init__(self, dtype, lanes):
        self.dtype, self.lanes = dtype, lanes
        super().__init__(name=f"Vector({dtype} x {lanes})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.lanes))


def _vector_of(array_type):
    return Vector(array_type.dtype, VECTOR_BYTES * 8 // array_type.dtype.bitwidth)


def _address(context, builder, array_type, array, index, vector_type):
    """A pointer to array[index], as a pointer to a vector (1-D contiguous arrays only)."""
    data = context.make_array(array_type)(context, builder, array).data
    element = builder.gep(data, [index])
    return builder.bitcast(element, context.get_value_type(vector_type).as_pointer())


def _check_float_vector_array(name, a):
    if not (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and isinstance(a.dtype, types.Float)):
        raise TypeError(f"vector.{name}: expected a 1-D contiguous float array, got {a}")


@intrinsic
def _zeros(typingctx, a):
    _check_float_vector_array("zeros", a)
    vector = _vector_of(a)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vector), None)
    return vector(a), codegen


@intrinsic
def _load(typingctx, a, i):
    _check_float_vector_array("load", a)
    vector = _vector_of(a)

    def codegen(context, builder, sig, args):
        address = _address(context, builder, a, args[0], args[1], vector)
        return builder.load(address, align=a.dtype.bitwidth // 8)          # any element, not a vector boundary
    return vector(a, types.intp), codegen


@intrinsic
def _store(typingctx, a, i, v):
    _check_float_vector_array("store", a)
    if not a.mutable or v != _vector_of(a):
        raise TypeError(f"vector.store: expected a writeable array and a vector of its dtype, got {a} and {v}")

    def codegen(context, builder, sig, args):
        address = _address(context, builder, a, args[0], args[1], v)
        builder.store(args[2], address, align=a.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.void(a, types.intp, v), codegen


@intrinsic
def _fma(typingctx, x, v, acc):
    if v != acc:
        raise TypeError(f"vector.fma: expected two vectors of one type, got {v} and {acc}")

    def codegen(context, builder, sig, args):
        scalar, vector, accumulator = args
        lane0 = builder.insert_element(ir.Constant(vector.type, None), scalar, ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(lane0, lane0, ir.Constant(ir.VectorType(ir.IntType(32), v.lanes), None))
        if _HAS_FMA:
            name = f"llvm.fma.v{v.lanes}f{v.dtype.bitwidth}"
            llvm_fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector.type, [vector.type] * 3),
                                                      name)
            return builder.call(llvm_fma, [splat, vector, accumulator])
        return builder.fadd(accumulator, builder.fmul(splat, vector))       # no FMA unit: two roundings
    return v(v.dtype, v, v), codegen


@intrinsic
def _add(typingctx, u, v):
    if u != v:
        raise TypeError(f"vector.add: expected two vectors of one type, got {u} and {v}")

    def codegen(context, builder, sig, args):
        return builder.fadd(*args)
    return v(v, v), codegen


@overload(zeros)
def _zeros_overload(a):
    return lambda a: _zeros(a)


@overload(load)
def _load_overload(a, i):
    return lambda a, i: _load(a, i)


@overload(store)
def _store_overload(a, i, v):
    return lambda a, i, v: _store(a, i, v)


@overload(fma)
def _fma_overload(x, v, acc):
    if isinstance(v, Vector) and isinstance(acc, Vector):
        return lambda x, v, acc: _fma(x, v, acc)


@overload(add)
def _add_overload(u, v):
    if isinstance(u, Vector) and isinstance(v, Vector):
        return lambda u, v: _add(u, v)
