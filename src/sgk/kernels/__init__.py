"""Triton kernels and their launchers, nothing else: one module per op (spmm, sddmm, softmax).

Launchers take raw, already-validated tensors (flattened to one batch dimension) and allocate
their outputs; validation, broadcasting and autograd live in :mod:`sgk.ops`. The package imports
no module itself, so CPU-only use of sgk never compiles or imports a kernel.
"""
