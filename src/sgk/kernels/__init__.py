"""Triton kernels and their launchers, nothing else: one module per op (spmm, sddmm, softmax, bsr).

Launchers take raw, already-validated tensors (flattened to one batch dimension) and allocate
their outputs; validation, broadcasting and autograd live in :mod:`sgk.ops`. The package imports
no kernel module itself, so CPU-only use of sgk never compiles or imports a kernel.

Configuration choice: the first call with a new bucketed problem key times a short candidate
list on the real operands (compiling each candidate once: seconds, once per bucket) and keeps the
fastest; :func:`set_autotune` (False) makes every launcher use its measured heuristic (the first
candidate) instead, e.g. for reproducible timings or when compile time matters more.
"""
from ._tuning import autotune_enabled, set_autotune

__all__ = ["set_autotune", "autotune_enabled"]
