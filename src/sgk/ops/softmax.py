"""``sparse_softmax``: softmax over the nonzeros of each CSR row, with autograd."""
from __future__ import annotations

import math

import torch

from ..checks import check, check_csr
from ..csr import CSRMatrix, Topology
from . import _library
from ._common import find_plan, keep_plan, layout_key, select_backend

__all__ = ["sparse_softmax"]


def _flat_values(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(math.prod(v.shape[:-1]), v.shape[-1]).contiguous()


def _softmax_raw(topo: Topology, values: torch.Tensor, scale: float, causal: bool, backend: str) -> torch.Tensor:
    out = _library.sparse_softmax(
        topo.row_offsets,
        topo.column_indices,
        topo.row_indices,
        topo.row_swizzle,
        _flat_values(values),
        scale,
        topo.max_row_length,
        causal,
        backend,
    )
    return out.reshape(values.shape)


class _SparseSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, topo: Topology, values, scale, causal, backend):
        out = _softmax_raw(topo, values, scale, causal, backend)
        ctx.topo, ctx.scale, ctx.backend = topo, scale, backend
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        # Masked (causal) entries have output 0, so their gradient is 0 without a mask here.
        (out,) = ctx.saved_tensors
        topo = ctx.topo
        d = _library.sparse_softmax_backward(
            topo.row_offsets,
            topo.row_indices,
            topo.row_swizzle,
            _flat_values(out),
            _flat_values(grad.expand_as(out)),
            ctx.scale,
            topo.max_row_length,
            ctx.backend,
        )
        return None, d.reshape(out.shape), None, None, None


def sparse_softmax(
    a: CSRMatrix, *, scale: float | None = None, causal: bool = False, method: str = "auto"
) -> CSRMatrix:
    """Row-wise softmax of ``scale · a`` over each row's nonzeros (absent entries count as −∞).

    Numerically safe (the row maximum is subtracted); an empty row, or a row whose entries are all
    −∞ or masked, gives zeros, never NaN. Values may carry batch dimensions. Differentiable in
    a.values.

    Args:
        a: :class:`~sgk.CSRMatrix`.
        scale: multiplies the values before the softmax (e.g. 1/sqrt(d) for attention); default 1.
        causal: mask, inside the kernel, the entries above the diagonal (column > row): they count
            as absent and their output is 0 (lets a non-causal topology serve causal attention).
        method: ``"auto"``, ``"triton"`` or ``"reference"`` (see :func:`sgk.spmm`).

    Reference: :func:`sgk.ops.reference.sparse_softmax`.
    """
    op = "sparse_softmax"
    if (method == "auto" and type(a) is CSRMatrix and type(a.values) is torch.Tensor and type(causal) is bool
            and (scale is None or type(scale) in (int, float)) and not torch.compiler.is_compiling()
            and not (torch.is_grad_enabled() and a.values.requires_grad)):
        plan = find_plan(a.topology, "softmax", (*layout_key(a.values), scale, causal))
        if plan is not None:
            return plan(a.topology, a.values)
    check_csr(op, "a", a)
    key = (*layout_key(a.values), scale, causal)  # before scale's default: None and 1.0 are both keys
    scale = 1.0 if scale is None else scale
    check(isinstance(scale, (int, float)), lambda: f"{op}(): scale must be a number, got {type(scale).__name__}", TypeError)
    backend = select_backend(op, method, a.values)
    topo = a.topology.prepare()
    topo.max_row_length  # noqa: B018 (cached before autograd, one host sync per topology)
    if torch.is_grad_enabled() and a.values.requires_grad:
        values = _SparseSoftmax.apply(topo, a.values, float(scale), bool(causal), backend)
    else:
        values = _softmax_raw(topo, a.values, float(scale), bool(causal), backend)
        if (method == "auto" and backend == "triton" and type(a) is CSRMatrix and type(causal) is bool
                and not torch.compiler.is_compiling()):
            # A repeated inference call with this values layout, scale and causal flag skips the
            # checks and the op layer.
            s, c = float(scale), bool(causal)
            keep_plan(topo, "softmax", key, lambda t, v: CSRMatrix._make(t, _softmax_raw(t, v, s, c, backend)))
    return CSRMatrix._make(topo, values)
