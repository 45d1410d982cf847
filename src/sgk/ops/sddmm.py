"""``sddmm``: X·Yᵀ computed only at a sparse pattern's nonzeros, batched, with autograd."""
from __future__ import annotations

import torch

from ..checks import FLOAT_DTYPES, broadcast_batch, check, check_csr, check_dense, check_same_device, check_same_dtype
from ..bsr import BSRMatrix
from ..csr import CSRMatrix, Topology
from . import _library
from ._common import find_plan, flatten_batch, keep_plan, layout_key, select_backend
from .bsr import bsr_sddmm
from .spmm import _spmm_raw

__all__ = ["sddmm"]


def _sddmm_raw(topo: Topology, x: torch.Tensor, y: torch.Tensor, batch: tuple[int, ...], backend: str) -> torch.Tensor:
    if not batch:  # the common case, with the fewest host operations (no views)
        return _library.sddmm(
            topo.row_offsets, topo.column_indices, topo.row_indices, topo.row_swizzle, x, y, backend
        )
    out = _library.sddmm(
        topo.row_offsets,
        topo.column_indices,
        topo.row_indices,
        topo.row_swizzle,
        flatten_batch(x, batch, 2),
        flatten_batch(y, batch, 2),
        backend,
    )
    return out.reshape(*batch, topo.nnz)


class _Sddmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, topo, x, y, batch, backend):
        ctx.topo, ctx.batch, ctx.backend = topo, batch, backend
        ctx.save_for_backward(x, y)
        return _sddmm_raw(topo, x, y, batch, backend)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        topo, batch, backend = ctx.topo, ctx.batch, ctx.backend
        grad = grad.contiguous()
        d_x = d_y = None
        if ctx.needs_input_grad[1]:
            # dX = G · Y with G the gradient values on the pattern.
            d_x = _spmm_raw(topo, grad, y, None, False, batch, backend).sum_to_size(x.shape)
        if ctx.needs_input_grad[2]:
            # dY = Gᵀ · X through the cached transpose.
            t_topo, perm = topo.transpose()
            grad_t = grad.index_select(-1, perm) if topo.nnz else grad
            d_y = _spmm_raw(t_topo, grad_t, x, None, False, batch, backend).sum_to_size(y.shape)
        return None, d_x, d_y, None, None


def sddmm(x: torch.Tensor, y: torch.Tensor, pattern: CSRMatrix, *, method: str = "auto") -> CSRMatrix:
    """Sampled dense-dense product: the values of X·Yᵀ at ``pattern``'s nonzeros.

    Args:
        x: dense (*bx, m, d).
        y: dense (*by, k, d) of x's dtype (note: Y, not Yᵀ; both operands are row-major in d).
        pattern: :class:`~sgk.CSRMatrix` m×k whose topology is sampled (its values are ignored);
            a :class:`~sgk.BSRMatrix` goes to :func:`sgk.bsr_sddmm` and returns a BSRMatrix.
        method: ``"auto"``, ``"triton"`` or ``"reference"`` (see :func:`sgk.spmm`).

    Returns:
        A CSRMatrix sharing pattern's topology with values (*broadcast(bx, by), nnz) of x's
        dtype; fp16/bf16 accumulate in fp32. Differentiable in x and y.

    Reference: :func:`sgk.ops.reference.sddmm`.
    """
    op = "sddmm"
    if (method == "auto" and type(pattern) is CSRMatrix and type(x) is torch.Tensor and type(y) is torch.Tensor
            and not torch.compiler.is_compiling() and not (torch.is_grad_enabled() and (x.requires_grad or y.requires_grad))):
        plan = find_plan(pattern.topology, "sddmm", layout_key(x, y))
        if plan is not None:
            return plan(pattern.topology, x, y)
    if isinstance(pattern, BSRMatrix):  # block pattern: the tensor-core path
        return bsr_sddmm(x, y, pattern, method=method)
    check_dense(op, "x", x, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_dense(op, "y", y, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_csr(op, "pattern", pattern)
    check_same_device(op, x=x, y=y, pattern=pattern.row_offsets)
    check_same_dtype(op, x=x, y=y)
    m, k = pattern.shape
    check(x.shape[-2] == m, lambda: f"{op}(): pattern is {m}×{k} so x must be (*batch, {m}, d), got {tuple(x.shape)}")
    check(y.shape[-2] == k, lambda: f"{op}(): pattern is {m}×{k} so y must be (*batch, {k}, d), got {tuple(y.shape)}")
    check(
        x.shape[-1] == y.shape[-1],
        lambda: f"{op}(): x and y must share the reduction dimension d, got x {tuple(x.shape)} and y {tuple(y.shape)}",
    )
    batch = broadcast_batch(op, ("x", "y"), (tuple(x.shape[:-2]), tuple(y.shape[:-2])))
    backend = select_backend(op, method, x)
    if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
        topo = pattern.topology.prepare(transpose=y.requires_grad)
        values = _Sddmm.apply(topo, x, y, batch, backend)
    else:
        topo = pattern.topology
        values = _sddmm_raw(topo, x, y, batch, backend)
        if (method == "auto" and backend == "triton" and type(pattern) is CSRMatrix and type(x) is torch.Tensor
                and type(y) is torch.Tensor and not torch.compiler.is_compiling()):
            # A repeated inference call with this operand layout skips the checks and the op layer
            # (the checks read only the layout, so a layout seen once is valid again).
            keep_plan(topo, "sddmm", layout_key(x, y), lambda t, x, y: CSRMatrix._make(t, _sddmm_raw(t, x, y, batch, backend)))
    return CSRMatrix._make(pattern.topology, values)
