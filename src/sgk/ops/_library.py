"""The ``torch.ops.sgk.*`` custom ops: one registered op per kernel, with a fake implementation.

Each op takes raw tensors flattened to one batch dimension (the public functions in sgk.ops do the
validation and the broadcasting) and a ``backend`` string, ``"triton"`` or ``"reference"`` (and, for
``sgk::spmm``, ``"triton-bitmap"``: the dense-tile kernel only).
Registering them with ``torch.library`` lets ``torch.compile`` trace through sgk's ops without
looking inside the Triton launches: the fake implementations give it the output shapes. In eager
mode sgk calls the implementations directly (see ``_dispatch`` at the bottom).

(No ``from __future__ import annotations`` here: torch.library reads the annotations.)
"""
from typing import Optional

import torch

from ..checks import flat_batch
from . import reference

_BACKENDS = ("triton", "reference")
_KERNELS = None


def _kernels():
    """The kernel modules, imported on first use: CPU-only use of sgk never imports a kernel."""
    global _KERNELS
    if _KERNELS is None:
        import types

        from ..kernels import bsr, sddmm, softmax, spmm

        _KERNELS = types.SimpleNamespace(spmm=spmm, sddmm=sddmm, softmax=softmax, bsr=bsr)
    return _KERNELS


def _spmm_impl(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    values: torch.Tensor,
    b: torch.Tensor,
    bias: Optional[torch.Tensor],
    relu: bool,
    backend: str,
    column_indices16: Optional[torch.Tensor] = None,
    bitmap: Optional[torch.Tensor] = None,
    word_offsets: Optional[torch.Tensor] = None,
    max_row: int = -1,
    row_bounds: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """values (V, nnz), b (Bb, k, n), bias (Vb, m) or None → C (B, m, n); unbatched values (nnz),
    b (k, n) and bias (m) or None → C (m, n). ``column_indices16``: the int16 copy of the indices
    (k <= 32767) that the kernels' compact configurations read; ``bitmap``, ``word_offsets``: the
    topology's bitmap form (``Topology.bitmap``) that the dense-tile configurations read; backend
    ``"triton-bitmap"`` restricts the choice to those. ``max_row``: the longest row's length for
    the tuner (-1: not known). ``row_bounds``: ``Topology.row_bounds``, for the gather kernels
    (made per call when None)."""
    if backend in ("triton", "triton-bitmap"):
        return _kernels().spmm.spmm(
            row_offsets, column_indices, row_swizzle, values, b, bias, relu, column_indices16=column_indices16,
            bitmap=(bitmap, word_offsets) if bitmap is not None and word_offsets is not None else None,
            bitmap_only=backend == "triton-bitmap", max_row=max_row, row_bounds=row_bounds,
        )
    m = row_offsets.numel() - 1
    out = reference.spmm_coo(row_indices, column_indices, values, b, m, bias, relu)
    if _unbatched_spmm(values, b, bias):
        return out
    batch = flat_batch(values.shape[0], b.shape[0], bias.shape[0] if bias is not None else 1)
    return out.expand(batch, *out.shape[-2:]).contiguous()


def _unbatched_spmm(values, b, bias) -> bool:
    return values.dim() == 1 and b.dim() == 2 and (bias is None or bias.dim() == 1)


spmm_op = torch.library.custom_op("sgk::spmm", _spmm_impl, mutates_args=())


@spmm_op.register_fake
def _(row_offsets, column_indices, row_indices, row_swizzle, values, b, bias, relu, backend, column_indices16=None, bitmap=None,
      word_offsets=None, max_row=-1, row_bounds=None):
    if _unbatched_spmm(values, b, bias):
        return b.new_empty(row_offsets.shape[0] - 1, b.shape[-1])
    batch = flat_batch(values.shape[0], b.shape[0], bias.shape[0] if bias is not None else 1)
    return b.new_empty(batch, row_offsets.shape[0] - 1, b.shape[-1])


def _sddmm_impl(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    backend: str,
) -> torch.Tensor:
    """x (Bx, m, d), y (By, k, d) → values (B, nnz) of X·Yᵀ at the pattern; unbatched x (m, d) and
    y (k, d) → (nnz)."""
    if backend == "triton":
        return _kernels().sddmm.sddmm(row_offsets, column_indices, row_swizzle, x, y, row_indices=row_indices)
    out = reference.sddmm_coo(row_indices, column_indices, x, y)
    if x.dim() == 2 and y.dim() == 2:
        return out
    return out.expand(flat_batch(x.shape[0], y.shape[0]), out.shape[-1]).contiguous()


sddmm_op = torch.library.custom_op("sgk::sddmm", _sddmm_impl, mutates_args=())


@sddmm_op.register_fake
def _(row_offsets, column_indices, row_indices, row_swizzle, x, y, backend):
    if x.dim() == 2 and y.dim() == 2:
        return x.new_empty(column_indices.shape[0])
    return x.new_empty(flat_batch(x.shape[0], y.shape[0]), column_indices.shape[0])


def _softmax_impl(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    x: torch.Tensor,
    scale: float,
    max_row: int,
    causal: bool,
    backend: str,
) -> torch.Tensor:
    """x (B, nnz) → row-wise softmax of scale·x (B, nnz); max_row = the longest row's length;
    causal: entries with column > row are masked."""
    if backend == "triton":
        return _kernels().softmax.softmax(row_offsets, column_indices, row_swizzle, x, scale, max_row, causal)
    return reference.softmax_coo(row_indices, x, row_offsets.numel() - 1, scale, column_indices, causal)


softmax_op = torch.library.custom_op("sgk::sparse_softmax", _softmax_impl, mutates_args=())


@softmax_op.register_fake
def _(row_offsets, column_indices, row_indices, row_swizzle, x, scale, max_row, causal, backend):
    return torch.empty_like(x)


def _softmax_backward_impl(
    row_offsets: torch.Tensor,
    row_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    scale: float,
    max_row: int,
    backend: str,
) -> torch.Tensor:
    """y = softmax output, g = its gradient, both (B, nnz) → gradient of the softmax input."""
    if backend == "triton":
        return _kernels().softmax.softmax_backward(row_offsets, row_swizzle, y, g, scale, max_row)
    return reference.softmax_backward_coo(row_indices, y, g, row_offsets.numel() - 1, scale)


softmax_backward_op = torch.library.custom_op(
    "sgk::sparse_softmax_backward", _softmax_backward_impl, mutates_args=()
)


@softmax_backward_op.register_fake
def _(row_offsets, row_indices, row_swizzle, y, g, scale, max_row, backend):
    return torch.empty_like(g)


def _bsr_spmm_impl(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    block_perm: Optional[torch.Tensor],
    stored_rows: torch.Tensor,
    stored_cols: torch.Tensor,
    values: torch.Tensor,
    b: torch.Tensor,
    rows_out: int,
    out_transposed: bool,
    backend: str,
) -> torch.Tensor:
    """op(A)·B for a block-sparse A: values (V, nnzb, bs, bs), b (Bb, k', n). The Triton path walks
    the block pattern of op(A) (row_offsets, column_indices, row_swizzle; with ``block_perm`` that
    is Aᵀ's, read through the permutation); the reference uses the stored blocks' COO indices.
    Returns (B, rows_out, n), or its transpose (B, n, rows_out) written in place when
    ``out_transposed`` (dense × sparse)."""
    batch = flat_batch(values.shape[0], b.shape[0])
    n = b.shape[-1]
    if backend == "triton":
        return _kernels().bsr.spmm(row_offsets, column_indices, row_swizzle, block_perm, values, b, rows_out, out_transposed)
    out = reference.bsr_spmm_coo(stored_rows, stored_cols, values, b, rows_out, transpose=block_perm is not None)
    out = out.expand(batch, rows_out, n)
    return (out.transpose(1, 2) if out_transposed else out).contiguous()


bsr_spmm_op = torch.library.custom_op("sgk::bsr_spmm", _bsr_spmm_impl, mutates_args=())


@bsr_spmm_op.register_fake
def _(row_offsets, column_indices, row_swizzle, block_perm, stored_rows, stored_cols, values, b, rows_out, out_transposed, backend):
    batch = flat_batch(values.shape[0], b.shape[0])
    shape = (batch, b.shape[-1], rows_out) if out_transposed else (batch, rows_out, b.shape[-1])
    return b.new_empty(shape)


def _bsr_sddmm_impl(row_indices: torch.Tensor, column_indices: torch.Tensor, x: torch.Tensor, y: torch.Tensor, bs: int, backend: str) -> torch.Tensor:
    """x (Bx, m, d), y (By, k, d) → the bs×bs blocks of X·Yᵀ at the block pattern (B, nnzb, bs, bs)."""
    if backend == "triton":
        return _kernels().bsr.sddmm(row_indices, column_indices, x, y, bs)
    out = reference.bsr_sddmm_coo(row_indices, column_indices, x, y, bs)
    return out.expand(flat_batch(x.shape[0], y.shape[0]), *out.shape[1:]).contiguous()


bsr_sddmm_op = torch.library.custom_op("sgk::bsr_sddmm", _bsr_sddmm_impl, mutates_args=())


@bsr_sddmm_op.register_fake
def _(row_indices, column_indices, x, y, bs, backend):
    return x.new_empty(flat_batch(x.shape[0], y.shape[0]), column_indices.shape[0], bs, bs)


# -- what sgk.ops calls --------------------------------------------------------------------------
# Under torch.compile the registered ops are called, so that the compiler sees opaque ops with fake
# implementations; in eager mode the implementations are called directly, which saves the
# dispatcher's tens of microseconds per call (as much as a small kernel takes).
def _dispatch(op, impl):
    def call(*args):
        if torch.compiler.is_compiling():
            return op(*args)
        return impl(*args)

    call.__name__ = impl.__name__.replace("_impl", "").lstrip("_")
    call.__doc__ = impl.__doc__
    return call


spmm = _dispatch(spmm_op, _spmm_impl)
sddmm = _dispatch(sddmm_op, _sddmm_impl)
sparse_softmax = _dispatch(softmax_op, _softmax_impl)
sparse_softmax_backward = _dispatch(softmax_backward_op, _softmax_backward_impl)
bsr_spmm = _dispatch(bsr_spmm_op, _bsr_spmm_impl)
bsr_sddmm = _dispatch(bsr_sddmm_op, _bsr_sddmm_impl)
