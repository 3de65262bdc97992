"""Scratch memory that outlives a call: the convolutions' large temporary buffers, reused step after step.

A fresh array of tens of megabytes costs more than its size suggests: the operating system maps each page on
the first write to it (clearing 2 MiB at a time where transparent huge pages are on), and a buffer freed at the
end of a call goes back to it, to be mapped again by the next. On this project's 2-core machine that cost
conv3's forward pass 26 ms of its 38 (docs/speed_2026-12-01.md). Caffe shares one column buffer between all
its convolutions for the same reason.

    scratch(name, size, dtype)  ->  a 1-D array of `size` elements of `dtype`, uninitialised: the same memory on
                                    every call with that name and dtype, grown when a call needs more
    release()                   ->  forget every buffer (the memory returns once nothing else refers to it)

Layers run one after another, so one buffer per name serves every layer: a layer takes its buffers at the start
of a call and is done with them when it returns. Buffers are per thread, so two threads never share one.
"""
import threading

import numpy as np

_buffers = threading.local()


def scratch(name, size, dtype):
    """A 1-D array of `size` elements of `dtype`, uninitialised, reused by every later call with `name`."""
    held = _buffers.__dict__.setdefault("held", {})
    key = (name, np.dtype(dtype))
    buffer = held.get(key)
    if buffer is None or buffer.size < size:
        held[key] = buffer = None                   # let the old one go before the new one is made
        held[key] = buffer = np.empty(size, dtype)
    return buffer[:size]


def release():
    """Drop every scratch buffer of this thread."""
    _buffers.__dict__.pop("held", None)
