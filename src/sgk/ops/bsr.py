"""Block-sparse ops with autograd: ``bsr_spmm`` (A·B), ``bsr_dsmm`` (X·A), ``bsr_sddmm``.

Each is one primitive, op(A)·B with op(A) ∈ {A, Aᵀ}, or the blocks of X·Yᵀ at a block pattern;
the gradients are the same primitives (DESIGN.md): for C = op(A)·B, dB = op(A)ᵀ·dC and
d(values) = the blocks of dC·Bᵀ (or B·dCᵀ when op(A) = Aᵀ) at A's pattern; for the SDDMM,
dX = G·Y and dY = Gᵀ·X. Transposes of A are read in place by the kernel through the cached
transposed block pattern, never copied. CUDA tensors run the tensor-core Triton kernels
(sgk.kernels.bsr); CPU tensors run the block-wise reference.
"""
from __future__ import annotations

import torch

from ..bsr import BSRMatrix
from ..checks import FLOAT_DTYPES, broadcast_batch, check, check_dense, check_same_device, check_same_dtype
from ..csr import Topology
from . import _library
from ._common import flatten_batch, select_backend

__all__ = ["bsr_spmm", "bsr_dsmm", "bsr_sddmm"]


def _mm(topo: Topology, bs: int, values: torch.Tensor, b: torch.Tensor, transpose: bool, out_transposed: bool, backend: str):
    """op(A)·B on flattened operands: values (V, nnzb, bs, bs), b (Bb, k', n) → (B, rows, n), or
    (B, n, rows) when ``out_transposed``."""
    if transpose:
        walk, perm = topo.transpose()
        rows_out = topo.shape[1] * bs
    else:
        walk, perm = topo, None
        rows_out = topo.shape[0] * bs
    return _library.bsr_spmm(
        walk.row_offsets, walk.column_indices, walk.row_swizzle, perm, topo.row_indices, topo.column_indices,
        values, b, rows_out, out_transposed, backend,
    )


def _blocks(topo: Topology, bs: int, x: torch.Tensor, y: torch.Tensor, backend: str) -> torch.Tensor:
    """The bs×bs blocks of X·Yᵀ at the pattern: x (Bx, m, d), y (By, k, d) → (B, nnzb, bs, bs)."""
    return _library.bsr_sddmm(topo.row_indices, topo.column_indices, x, y, bs, backend)


class _BsrMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, topo, bs, values, b, transpose, out_transposed, backend):
        ctx.topo, ctx.bs, ctx.transpose, ctx.out_transposed, ctx.backend = topo, bs, transpose, out_transposed, backend
        ctx.save_for_backward(values, b)
        return _mm(topo, bs, values, b, transpose, out_transposed, backend)

    @staticmethod
    def backward(ctx, grad):
        values, b = ctx.saved_tensors
        topo, bs, transpose, backend = ctx.topo, ctx.bs, ctx.transpose, ctx.backend
        d_c = grad.transpose(1, 2) if ctx.out_transposed else grad  # (B, rows, n)
        d_values = d_b = None
        if ctx.needs_input_grad[2]:
            # C = A·B: dA = dC·Bᵀ; C = Aᵀ·B: dA = B·dCᵀ; both at A's block pattern.
            x, y = (b, d_c) if transpose else (d_c, b)
            d_values = _blocks(topo, bs, x, y, backend).sum_to_size(values.shape)
        if ctx.needs_input_grad[3]:
            d_b = _mm(topo, bs, values, d_c, not transpose, False, backend).sum_to_size(b.shape)
        return None, None, d_values, d_b, None, None, None


class _BsrSddmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, topo, bs, x, y, backend):
        ctx.topo, ctx.bs, ctx.backend = topo, bs, backend
        ctx.save_for_backward(x, y)
        return _blocks(topo, bs, x, y, backend)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        topo, bs, backend = ctx.topo, ctx.bs, ctx.backend
        d_x = d_y = None
        if ctx.needs_input_grad[2]:
            d_x = _mm(topo, bs, grad, y, False, False, backend).sum_to_size(x.shape)  # dX = G·Y
        if ctx.needs_input_grad[3]:
            d_y = _mm(topo, bs, grad, x, True, False, backend).sum_to_size(y.shape)  # dY = Gᵀ·X
        return None, None, d_x, d_y, None


def _check_bsr(op: str, name: str, a: object) -> BSRMatrix:
    if not isinstance(a, BSRMatrix):
        hint = " (build one with sgk.BSRMatrix.from_dense / random)" if isinstance(a, torch.Tensor) else ""
        raise TypeError(f"{op}(): {name} must be an sgk.BSRMatrix, got {type(a).__name__}{hint}")
    return a


def _needs_grad(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def bsr_spmm(a: BSRMatrix, b: torch.Tensor, *, method: str = "auto") -> torch.Tensor:
    """C = A·B for a block-sparse A (m×k) and dense B (*batch, k, n), on tensor cores.

    Args:
        a: :class:`~sgk.BSRMatrix` m×k (values may carry batch dimensions).
        b: dense (*bb, k, n) of a's dtype, any strides.
        method: ``"auto"`` (Triton for CUDA tensors, the block-wise reference otherwise),
            ``"triton"`` or ``"reference"``.

    Returns:
        (*batch, m, n) of b's dtype. fp32 runs on TF32 tensor cores; fp16/bf16 accumulate in fp32.
        Differentiable in a.values and b.
    """
    op = "bsr_spmm"
    _check_bsr(op, "a", a)
    check_dense(op, "b", b, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_same_device(op, a=a.values, b=b)
    check_same_dtype(op, a=a.values, b=b)
    m, k = a.shape
    check(b.shape[-2] == k, lambda: f"{op}(): a is {m}×{k} but b has {b.shape[-2]} rows (b must be (*batch, {k}, n), got {tuple(b.shape)})")
    batch = broadcast_batch(op, ("a", "b"), (a.batch_shape, tuple(b.shape[:-2])))
    backend = select_backend(op, method, b)
    values, bf = flatten_batch(a.values, batch, 3), flatten_batch(b, batch, 2)
    if _needs_grad(a.values, b):
        a.topology.prepare(transpose=True)
        out = _BsrMM.apply(a.topology, a.block_size, values, bf, False, False, backend)
    else:
        out = _mm(a.topology, a.block_size, values, bf, False, False, backend)
    return out.reshape(*batch, m, b.shape[-1])


def bsr_dsmm(x: torch.Tensor, a: BSRMatrix, *, method: str = "auto") -> torch.Tensor:
    """Y = X·A for a dense X (*batch, p, m) and a block-sparse A (m×k): the dense × sparse product
    (a linear layer ``x @ W`` with a block-sparse W). Computed as (Aᵀ·Xᵀ)ᵀ with Aᵀ and both
    transposes read or written in place.

    Returns (*batch, p, k) of x's dtype; differentiable in x and a.values.
    """
    op = "bsr_dsmm"
    _check_bsr(op, "a", a)
    check_dense(op, "x", x, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_same_device(op, x=x, a=a.values)
    check_same_dtype(op, x=x, a=a.values)
    m, k = a.shape
    check(x.shape[-1] == m, lambda: f"{op}(): a is {m}×{k} so x must be (*batch, p, {m}), got {tuple(x.shape)}")
    batch = broadcast_batch(op, ("x", "a"), (tuple(x.shape[:-2]), a.batch_shape))
    backend = select_backend(op, method, x)
    values = flatten_batch(a.values, batch, 3)
    xt = flatten_batch(x, batch, 2).transpose(1, 2)  # (B, m, p), a view
    a.topology.prepare(transpose=True)
    if _needs_grad(a.values, x):
        out = _BsrMM.apply(a.topology, a.block_size, values, xt, True, True, backend)
    else:
        out = _mm(a.topology, a.block_size, values, xt, True, True, backend)
    return out.reshape(*batch, x.shape[-2], k)


def bsr_sddmm(x: torch.Tensor, y: torch.Tensor, pattern: BSRMatrix, *, method: str = "auto") -> BSRMatrix:
    """The blocks of X·Yᵀ kept by a block pattern: x (*bx, m, d), y (*by, k, d).

    Returns a :class:`~sgk.BSRMatrix` sharing pattern's block topology, values
    (*broadcast(bx, by), nnz_blocks, bs, bs) of x's dtype; differentiable in x and y.
    """
    op = "bsr_sddmm"
    _check_bsr(op, "pattern", pattern)
    check_dense(op, "x", x, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_dense(op, "y", y, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_same_device(op, x=x, y=y, pattern=pattern.row_offsets)
    check_same_dtype(op, x=x, y=y)
    m, k = pattern.shape
    check(x.shape[-2] == m, lambda: f"{op}(): pattern is {m}×{k} so x must be (*batch, {m}, d), got {tuple(x.shape)}")
    check(y.shape[-2] == k, lambda: f"{op}(): pattern is {m}×{k} so y must be (*batch, {k}, d), got {tuple(y.shape)}")
    check(x.shape[-1] == y.shape[-1], lambda: f"{op}(): x and y must share d, got x {tuple(x.shape)} and y {tuple(y.shape)}")
    batch = broadcast_batch(op, ("x", "y"), (tuple(x.shape[:-2]), tuple(y.shape[:-2])))
    backend = select_backend(op, method, x)
    xf, yf = flatten_batch(x, batch, 2), flatten_batch(y, batch, 2)
    bs = pattern.block_size
    if _needs_grad(x, y):
        pattern.topology.prepare(transpose=True)
        values = _BsrSddmm.apply(pattern.topology, bs, xf, yf, backend)
    else:
        values = _blocks(pattern.topology, bs, xf, yf, backend)
    return BSRMatrix._make(pattern.topology, values.reshape(*batch, pattern.nnz_blocks, bs, bs), bs)
