"""Triton kernels and their launchers, nothing else.

Launchers take raw, already-validated tensors (flattened to one batch dimension) and allocate
their outputs; validation, broadcasting and autograd live in :mod:`sgk.ops`.
"""
from .sddmm import sddmm
from .softmax import softmax, softmax_backward
from .spmm import spmm

__all__ = ["spmm", "sddmm", "softmax", "softmax_backward"]
