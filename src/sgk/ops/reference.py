"""Plain-torch versions of every op: the CPU path and the test oracle.

They accumulate in float32 (float64 for float64 inputs) and cast the result to the input dtype,
as the kernels do. Batch dimensions broadcast: ``values`` (*bv, nnz) with ``b`` (*bb, k, n) gives
(*broadcast(bv, bb), m, n). Memory is O(batch·nnz·n): meant for correctness, not speed.

Two layers: ``*_coo`` functions take raw index tensors (what the registered torch ops call);
the others take :class:`~sgk.CSRMatrix` arguments.
"""
from __future__ import annotations

import torch

from ..csr import CSRMatrix

__all__ = [
    "spmm",
    "sddmm",
    "sparse_softmax",
    "sparse_softmax_backward",
    "transpose",
    "spmm_coo",
    "sddmm_coo",
    "softmax_coo",
    "softmax_backward_coo",
    "bsr_spmm_coo",
    "bsr_sddmm_coo",
]


def _acc_dtype(*dtypes: torch.dtype) -> torch.dtype:
    return torch.float64 if torch.float64 in dtypes else torch.float32


def spmm_coo(
    row_indices: torch.Tensor,
    column_indices: torch.Tensor,
    values: torch.Tensor,
    b: torch.Tensor,
    m: int,
    bias: torch.Tensor | None = None,
    relu: bool = False,
) -> torch.Tensor:
    """C[..., i, :] = sum over nonzeros (i, j) of values[..., (i, j)] · b[..., j, :] (+ bias[..., i], ReLU)."""
    acc = _acc_dtype(values.dtype, b.dtype)
    rows, cols = row_indices.long(), column_indices.long()
    vals, bb = values.to(acc), b.to(acc)
    batch = torch.broadcast_shapes(vals.shape[:-1], bb.shape[:-2])
    n = b.shape[-1]
    out = torch.zeros(*batch, m, n, dtype=acc, device=b.device)
    if rows.numel():
        prod = vals[..., :, None] * bb[..., cols, :]
        out = out.index_add(-2, rows, prod.expand(*batch, *prod.shape[-2:]))
    if bias is not None:
        out = out + bias.to(acc)[..., :, None]
    if relu:
        out = torch.relu(out)
    return out.to(b.dtype)


def sddmm_coo(
    row_indices: torch.Tensor, column_indices: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """out[..., e] = dot(x[..., row(e), :], y[..., col(e), :]) for every nonzero e."""
    acc = _acc_dtype(x.dtype, y.dtype)
    rows, cols = row_indices.long(), column_indices.long()
    out = (x.to(acc)[..., rows, :] * y.to(acc)[..., cols, :]).sum(-1)
    return out.to(x.dtype)


def softmax_coo(
    row_indices: torch.Tensor,
    values: torch.Tensor,
    m: int,
    scale: float = 1.0,
    column_indices: torch.Tensor | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """Row-wise softmax of ``scale · values`` over each row's nonzeros; empty rows stay empty.
    ``causal`` (needs ``column_indices``): entries with column > row count as absent (output 0)."""
    acc = _acc_dtype(values.dtype)
    rows = row_indices.long()
    v = values.to(acc) * scale
    if causal:
        v = torch.where(column_indices.long() <= rows, v, torch.full_like(v, float("-inf")))
    batch = v.shape[:-1]
    if rows.numel() == 0:
        return values.clone()
    idx = rows.expand(*batch, rows.numel())
    row_max = torch.full((*batch, m), float("-inf"), dtype=acc, device=v.device)
    row_max = row_max.scatter_reduce(-1, idx, v, reduce="amax", include_self=True)
    shift = row_max.gather(-1, idx)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    e = torch.exp(v - shift)
    total = torch.zeros((*batch, m), dtype=acc, device=v.device).index_add(-1, rows, e)
    denom = total.gather(-1, idx)
    out = torch.where(denom > 0, e / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(e))
    return out.to(values.dtype)


def softmax_backward_coo(
    row_indices: torch.Tensor, out: torch.Tensor, grad: torch.Tensor, m: int, scale: float = 1.0
) -> torch.Tensor:
    """d(values) = scale · y ⊙ (g − Σ_row g ⊙ y) for y = softmax(scale · values)."""
    acc = _acc_dtype(out.dtype, grad.dtype)
    rows = row_indices.long()
    y, g = out.to(acc), grad.to(acc)
    batch = torch.broadcast_shapes(y.shape[:-1], g.shape[:-1])
    y, g = y.expand(*batch, y.shape[-1]), g.expand(*batch, g.shape[-1])
    dot = torch.zeros((*batch, m), dtype=acc, device=y.device).index_add(-1, rows, g * y)
    return (scale * y * (g - dot[..., rows])).to(grad.dtype)


# -- CSRMatrix-level API ----------------------------------------------------------------------
def spmm(a: CSRMatrix, b: torch.Tensor, bias: torch.Tensor | None = None, activation: str | None = None) -> torch.Tensor:
    """Reference C = A·B (+ bias per row, optional ReLU), shape (*batch, m, n)."""
    return spmm_coo(a.row_indices, a.column_indices, a.values, b, a.shape[0], bias, activation == "relu")


def sddmm(x: torch.Tensor, y: torch.Tensor, pattern: CSRMatrix) -> torch.Tensor:
    """Reference values of X·Yᵀ at the pattern's nonzeros, shape (*batch, nnz)."""
    return sddmm_coo(pattern.row_indices, pattern.column_indices, x, y)


def sparse_softmax(a: CSRMatrix, scale: float = 1.0, causal: bool = False) -> torch.Tensor:
    """Reference row-wise softmax values, shape (*batch, nnz)."""
    return softmax_coo(a.row_indices, a.values, a.shape[0], scale, a.column_indices, causal)


def sparse_softmax_backward(out: CSRMatrix, grad: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return softmax_backward_coo(out.row_indices, out.values, grad, out.shape[0], scale)


def transpose(a: CSRMatrix) -> CSRMatrix:
    """Reference transpose through a dense round trip (independent of the cached permutation)."""
    dense = a.to_dense().transpose(-1, -2)
    mask = torch.zeros(a.shape[1], a.shape[0], dtype=torch.bool, device=a.device)
    if a.nnz:
        mask[a.column_indices.long(), a.row_indices.long()] = True
    return CSRMatrix.from_dense(dense, mask=mask)


# -- block-sparse (BSR) ---------------------------------------------------------------------------
def bsr_spmm_coo(
    block_rows: torch.Tensor,
    block_cols: torch.Tensor,
    values: torch.Tensor,
    b: torch.Tensor,
    rows_out: int,
    transpose: bool = False,
) -> torch.Tensor:
    """op(A)·B for a block-sparse A given by COO block indices of its stored blocks.

    values (*bv, nnzb, bs, bs); b (*bb, k', n) with k' the inner dimension of op(A); ``rows_out``
    rows of the result (m, or k when ``transpose``: op(A) = Aᵀ). Returns (*batch, rows_out, n).
    """
    acc = _acc_dtype(values.dtype, b.dtype)
    bs = values.shape[-1]
    n = b.shape[-1]
    out_blocks, in_blocks = (block_cols, block_rows) if transpose else (block_rows, block_cols)
    blocks = values.to(acc)
    if transpose:
        blocks = blocks.transpose(-1, -2)
    bb = b.to(acc).reshape(*b.shape[:-2], b.shape[-2] // bs, bs, n)
    batch = torch.broadcast_shapes(values.shape[:-3], b.shape[:-2])
    out = torch.zeros(*batch, rows_out // bs, bs, n, dtype=acc, device=b.device)
    if block_rows.numel():
        prod = blocks @ bb[..., in_blocks.long(), :, :]  # (*batch, nnzb, bs, n)
        out = out.index_add(-3, out_blocks.long(), prod.expand(*batch, *prod.shape[-3:]))
    return out.reshape(*batch, rows_out, n).to(b.dtype)


def bsr_sddmm_coo(block_rows: torch.Tensor, block_cols: torch.Tensor, x: torch.Tensor, y: torch.Tensor, bs: int) -> torch.Tensor:
    """The bs×bs blocks of X·Yᵀ at COO block indices: x (*bx, m, d), y (*by, k, d) →
    (*batch, nnzb, bs, bs) of x's dtype."""
    acc = _acc_dtype(x.dtype, y.dtype)
    d = x.shape[-1]
    xb = x.to(acc).reshape(*x.shape[:-2], x.shape[-2] // bs, bs, d)[..., block_rows.long(), :, :]
    yb = y.to(acc).reshape(*y.shape[:-2], y.shape[-2] // bs, bs, d)[..., block_cols.long(), :, :]
    return (xb @ yb.transpose(-1, -2)).to(x.dtype)
