"""``sparse_softmax``: softmax over the nonzeros of each CSR row, with autograd."""
from __future__ import annotations

import math

import torch

from ..checks import check, check_csr
from ..csr import CSRMatrix, Topology
from . import _library
from ._common import select_backend

__all__ = ["sparse_softmax"]


def _flat_values(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(math.prod(v.shape[:-1]), v.shape[-1]).contiguous()


class _SparseSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, topo: Topology, values, scale, backend):
        out = _library.sparse_softmax(
            topo.row_offsets, topo.row_indices, topo.row_swizzle, _flat_values(values), scale, backend
        ).reshape(values.shape)
        ctx.topo, ctx.scale, ctx.backend = topo, scale, backend
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        topo = ctx.topo
        d = _library.sparse_softmax_backward(
            topo.row_offsets,
            topo.row_indices,
            topo.row_swizzle,
            _flat_values(out),
            _flat_values(grad.expand_as(out)),
            ctx.scale,
            ctx.backend,
        )
        return None, d.reshape(out.shape), None, None


def sparse_softmax(a: CSRMatrix, *, scale: float | None = None, method: str = "auto") -> CSRMatrix:
    """Row-wise softmax of ``scale · a`` over each row's nonzeros (absent entries count as −∞).

    Numerically safe (the row maximum is subtracted); an empty row, or a row whose entries are all
    −∞, gives zeros, never NaN. Values may carry batch dimensions. Differentiable in a.values.

    Args:
        a: :class:`~sgk.CSRMatrix`.
        scale: multiplies the values before the softmax (e.g. 1/sqrt(d) for attention); default 1.
        method: ``"auto"``, ``"triton"`` or ``"reference"`` (see :func:`sgk.spmm`).

    Reference: :func:`sgk.ops.reference.sparse_softmax`.
    """
    op = "sparse_softmax"
    check_csr(op, "a", a)
    scale = 1.0 if scale is None else scale
    check(isinstance(scale, (int, float)), lambda: f"{op}(): scale must be a number, got {type(scale).__name__}", TypeError)
    backend = select_backend(op, method, a.values)
    topo = a.topology
    if torch.is_grad_enabled() and a.values.requires_grad:
        values = _SparseSoftmax.apply(topo, a.values, float(scale), backend)
    else:
        flat = _flat_values(a.values)
        values = _library.sparse_softmax(topo.row_offsets, topo.row_indices, topo.row_swizzle, flat, float(scale), backend)
        values = values.reshape(a.values.shape)
    return CSRMatrix._make(topo, values)
