"""``BSRMatrix``: a block-sparse matrix (square blocks of 16, 32, 64 or 128) for tensor-core paths.

The kept blocks form a CSR pattern over the block grid, held as a :class:`~sgk.csr.Topology`, so the
block pattern gets the same cached metadata as an unstructured one (row swizzle by blocks per block
row, COO block rows, the transpose permutation). Values are ``(*batch, nnz_blocks, bs, bs)``: a
leading batch shares the one block pattern, as with :class:`~sgk.CSRMatrix`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from .checks import FLOAT_DTYPES, INT32_MAX, check, check_fraction, check_matrix_shape, is_int
from .csr import Topology, _SparseValues, _to_int32

__all__ = ["BSRMatrix", "BLOCK_SIZES"]

BLOCK_SIZES = (16, 32, 64, 128)
"""Block sizes the block-sparse kernels implement (square blocks)."""


def _check_block_shape(op: str, shape: Sequence[int], block_size: int) -> tuple[int, int]:
    m, k = check_matrix_shape(op, shape)
    check(
        is_int(block_size) and block_size in BLOCK_SIZES,
        lambda: f"{op}: block_size must be one of the integers {BLOCK_SIZES}, got {block_size!r}",
    )
    check(
        m % block_size == 0 and k % block_size == 0,
        lambda: f"{op}: shape {(m, k)} must be a multiple of block_size = {block_size} in both dimensions",
    )
    check(m * k <= INT32_MAX * block_size, lambda: f"{op}: shape {(m, k)} is too large for int32 block indexing")
    return m, k


class BSRMatrix(_SparseValues):
    """A block-sparse m×k matrix: square ``block_size`` blocks in a CSR pattern over the block grid.

    Args:
        row_offsets: (m / bs + 1) int32/int64 tensor over block rows.
        column_indices: (nnz_blocks) block-column of each kept block, sorted within block rows.
        values: (*batch, nnz_blocks, bs, bs) floating tensor; the batch shares the block pattern.
        shape: (m, k), multiples of ``block_size``.
        block_size: 16, 32, 64 or 128.

    Cheap checks run here; :meth:`validate` checks the O(nnz) invariants. Index tensors are kept as
    int32 as :class:`~sgk.CSRMatrix` keeps them: contiguous int32 ones are not copied, so do not
    modify them in place afterwards.
    """

    def __init__(
        self,
        row_offsets: torch.Tensor,
        column_indices: torch.Tensor,
        values: torch.Tensor,
        shape: Sequence[int],
        block_size: int,
    ):
        op = "BSRMatrix()"
        m, k = _check_block_shape(op, shape, block_size)
        bs = int(block_size)
        for name, t in (("row_offsets", row_offsets), ("column_indices", column_indices), ("values", values)):
            check(isinstance(t, torch.Tensor), f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}", TypeError)
        check(
            values.dtype in FLOAT_DTYPES,
            f"{op}: values must be a floating tensor (float32, float16, bfloat16, float64), got {values.dtype}",
            TypeError,
        )
        check(
            row_offsets.device == column_indices.device == values.device,
            f"{op}: row_offsets, column_indices and values must be on one device, got "
            f"{row_offsets.device}, {column_indices.device}, {values.device}",
        )
        mb, kb = m // bs, k // bs
        check(
            row_offsets.dim() == 1 and row_offsets.numel() == mb + 1,
            f"{op}: row_offsets must have m / block_size + 1 = {mb + 1} entries, got shape {tuple(row_offsets.shape)}",
        )
        nnzb = column_indices.numel()
        check(
            values.dim() >= 3 and tuple(values.shape[-3:]) == (nnzb, bs, bs),
            f"{op}: values must have shape (*batch, nnz_blocks, {bs}, {bs}) with nnz_blocks = {nnzb}, "
            f"got {tuple(values.shape)}",
        )
        row_offsets = _to_int32(op, "row_offsets", row_offsets, nnzb)
        column_indices = _to_int32(op, "column_indices", column_indices, max(kb - 1, 0))
        self._topology = Topology(row_offsets, column_indices, (mb, kb))
        self._values = values
        self._block_size = bs

    @classmethod
    def _make(cls, topology: Topology, values: torch.Tensor, block_size: int) -> "BSRMatrix":
        obj = cls.__new__(cls)
        obj._topology = topology
        obj._values = values
        obj._block_size = block_size
        return obj

    def _rebuild(self, topology: Topology, values: torch.Tensor) -> "BSRMatrix":
        return BSRMatrix._make(topology, values, self._block_size)

    # -- properties (topology — the block pattern over the (m / bs) × (k / bs) grid — values,
    # dtype, device, requires_grad, sparsity: see _SparseValues) -------------------------------
    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def shape(self) -> tuple[int, int]:
        mb, kb = self._topology.shape
        return mb * self._block_size, kb * self._block_size

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self._values.shape[:-3])

    @property
    def nnz_blocks(self) -> int:
        return self._topology.nnz

    @property
    def nnz(self) -> int:
        """Stored entries: nnz_blocks · block_size²."""
        return self._topology.nnz * self._block_size**2

    @property
    def density(self) -> float:
        mb, kb = self._topology.shape
        return self.nnz_blocks / (mb * kb) if mb * kb else 0.0

    def __repr__(self) -> str:
        batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
        return (
            f"BSRMatrix(shape={self.shape}, block_size={self.block_size}, nnz_blocks={self.nnz_blocks}, "
            f"sparsity={self.sparsity:.3f}{batch}, dtype={self.dtype}, device={self.device})"
        )

    # -- derived matrices ----------------------------------------------------------------------
    def with_values(self, values: torch.Tensor) -> "BSRMatrix":
        """The same block pattern with new values of shape (*batch, nnz_blocks, bs, bs)."""
        bs = self._block_size
        check(isinstance(values, torch.Tensor), "BSRMatrix.with_values(): values must be a tensor", TypeError)
        check(values.dtype in FLOAT_DTYPES, f"BSRMatrix.with_values(): values must be floating, got {values.dtype}", TypeError)
        check(
            values.dim() >= 3 and tuple(values.shape[-3:]) == (self.nnz_blocks, bs, bs),
            lambda: f"BSRMatrix.with_values(): values must have shape (*batch, {self.nnz_blocks}, {bs}, {bs}), "
            f"got {tuple(values.shape)}",
        )
        check(values.device == self.device, f"BSRMatrix.with_values(): values are on {values.device}, the pattern on {self.device}")
        return BSRMatrix._make(self._topology, values, bs)

    def t(self) -> "BSRMatrix":
        """The k×m transpose: the cached transposed block pattern, blocks gathered and transposed
        (differentiable). The kernels read transposed operands in place instead."""
        t_topo, perm = self._topology.transpose()
        values = self._values.index_select(-3, perm).transpose(-1, -2) if self.nnz_blocks else self._values
        return BSRMatrix._make(t_topo, values, self._block_size)

    # -- conversions ---------------------------------------------------------------------------
    def block_mask(self) -> torch.Tensor:
        """(m / bs, k / bs) bool tensor: which blocks are kept."""
        mb, kb = self._topology.shape
        mask = torch.zeros(mb * kb, dtype=torch.bool, device=self.device)
        if self.nnz_blocks:
            flat = self._topology.row_indices.to(torch.int64) * kb + self.column_indices.to(torch.int64)
            mask[flat] = True
        return mask.reshape(mb, kb)

    def to_dense(self) -> torch.Tensor:
        """Dense (*batch, m, k) tensor (differentiable in values)."""
        bs = self._block_size
        mb, kb = self._topology.shape
        batch = self.batch_shape
        grid = self._values.new_zeros(*batch, mb * kb, bs, bs)
        if self.nnz_blocks:
            flat = self._topology.row_indices.to(torch.int64) * kb + self.column_indices.to(torch.int64)
            grid = grid.index_copy(-3, flat, self._values)
        grid = grid.reshape(*batch, mb, kb, bs, bs).transpose(-3, -2)
        return grid.reshape(*batch, mb * bs, kb * bs)

    def to_torch(self) -> torch.Tensor:
        """A ``torch.sparse_bsr_tensor`` (unbatched values only)."""
        check(not self.batch_shape, "BSRMatrix.to_torch(): batched values have no torch BSR form; index the batch first")
        return torch.sparse_bsr_tensor(
            self.row_offsets.to(torch.int64), self.column_indices.to(torch.int64), self._values, size=self.shape
        )

    def validate(self) -> "BSRMatrix":
        """Check the O(nnz) invariants of the block pattern (offsets, sorted in-range block columns)."""
        op = "BSRMatrix.validate()"
        off = self.row_offsets.to(torch.int64)
        cols = self.column_indices.to(torch.int64)
        mb, kb = self._topology.shape
        check(int(off[0]) == 0, f"{op}: row_offsets[0] must be 0, got {int(off[0])}")
        check(int(off[-1]) == cols.numel(), f"{op}: row_offsets[-1] must equal nnz_blocks = {cols.numel()}, got {int(off[-1])}")
        check(bool((off[1:] >= off[:-1]).all()), f"{op}: row_offsets must be non-decreasing")
        if cols.numel():
            check(bool(((cols >= 0) & (cols < kb)).all()), f"{op}: block column indices must lie in [0, {kb})")
            rows = self._topology.row_indices.to(torch.int64)
            same_row = rows[1:] == rows[:-1]
            check(
                bool((cols[1:][same_row] > cols[:-1][same_row]).all()),
                f"{op}: block column indices must be strictly increasing within each block row",
            )
        return self

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_block_mask(cls, mask: torch.Tensor, values: torch.Tensor, block_size: int) -> "BSRMatrix":
        """From a (m / bs, k / bs) bool block mask and values (*batch, nnz_blocks, bs, bs) in row-major
        block order."""
        op = "BSRMatrix.from_block_mask()"
        check(isinstance(mask, torch.Tensor) and mask.dim() == 2, f"{op}: mask must be a 2-D tensor", TypeError)
        check(isinstance(values, torch.Tensor), lambda: f"{op}: values must be a tensor of shape (*batch, nnz_blocks, "
              f"{block_size}, {block_size}), got {type(values).__name__}", TypeError)
        mask = mask.to(torch.bool)
        counts = mask.sum(1)
        offsets = torch.zeros(mask.shape[0] + 1, dtype=torch.int64, device=mask.device)
        offsets[1:] = torch.cumsum(counts, 0)
        cols = mask.nonzero()[:, 1]
        shape = (mask.shape[0] * block_size, mask.shape[1] * block_size)
        return cls(offsets, cols, values.to(mask.device), shape, block_size)

    @classmethod
    def from_dense(
        cls,
        x: torch.Tensor,
        block_size: int,
        *,
        sparsity: float | None = None,
        mask: torch.Tensor | None = None,
    ) -> "BSRMatrix":
        """Blocks of a dense (*batch, m, k) tensor.

        Which blocks are kept: ``mask`` (a (m / bs, k / bs) bool block mask) if given; else, with
        ``sparsity``, the ``round((1 - sparsity) · blocks)`` blocks of largest Frobenius norm
        (magnitude pruning by block, summed over the batch); else every block with a nonzero.
        """
        op = "BSRMatrix.from_dense()"
        check(isinstance(x, torch.Tensor) and x.dim() >= 2, f"{op}: x must be a tensor of shape (*batch, m, k)", TypeError)
        check(x.dtype in FLOAT_DTYPES, f"{op}: x must be floating, got {x.dtype}", TypeError)
        m, k = _check_block_shape(op, tuple(x.shape[-2:]), block_size)
        bs = block_size
        mb, kb = m // bs, k // bs
        batch = tuple(x.shape[:-2])
        nbatch = math.prod(batch)  # (explicit: a -1 in the reshapes below is ambiguous for an empty x)
        blocks = x.reshape(*batch, mb, bs, kb, bs).transpose(-3, -2)  # (*batch, mb, kb, bs, bs)
        if mask is not None:
            check(sparsity is None, f"{op}: give mask or sparsity, not both")
            check(
                isinstance(mask, torch.Tensor) and tuple(mask.shape) == (mb, kb),
                lambda: f"{op}: mask must be a ({mb}, {kb}) block mask, got {tuple(getattr(mask, 'shape', ()))}",
            )
            keep = mask.to(device=x.device, dtype=torch.bool)
        elif sparsity is not None:
            sparsity = check_fraction(op, "sparsity", sparsity)
            norms = blocks.detach().double().pow(2).sum(dim=(-1, -2)).reshape(nbatch, mb * kb).sum(0)
            n_keep = int(round((1.0 - sparsity) * mb * kb))
            keep = torch.zeros(mb * kb, dtype=torch.bool, device=x.device)
            if n_keep:
                keep[torch.topk(norms, n_keep).indices] = True
            keep = keep.reshape(mb, kb)
        else:
            keep = (blocks != 0).reshape(nbatch, mb, kb, bs * bs).any(-1).any(0)
        values = blocks[..., keep, :, :]
        return cls.from_block_mask(keep, values, bs)

    @classmethod
    def random(
        cls,
        m: int,
        k: int,
        block_size: int,
        sparsity: float,
        *,
        dtype: torch.dtype = torch.float32,
        device: Any = None,
        generator: torch.Generator | None = None,
        batch_shape: Sequence[int] = (),
    ) -> "BSRMatrix":
        """A uniformly random block pattern keeping ``round((1 - sparsity) · blocks)`` blocks, with
        N(0, 1) values. Drawn on the CPU from ``generator`` (reproducible), then moved."""
        op = "BSRMatrix.random()"
        _check_block_shape(op, (m, k), block_size)
        check(0.0 <= float(sparsity) <= 1.0, lambda: f"{op}: sparsity must be in [0, 1], got {sparsity}")
        check(dtype in FLOAT_DTYPES, f"{op}: dtype must be floating, got {dtype}", TypeError)
        mb, kb = m // block_size, k // block_size
        n_keep = int(round((1.0 - float(sparsity)) * mb * kb))
        chosen = torch.randperm(mb * kb, generator=generator)[:n_keep]
        mask = torch.zeros(mb * kb, dtype=torch.bool)
        mask[chosen] = True
        values = torch.randn(*batch_shape, n_keep, block_size, block_size, generator=generator, dtype=torch.float64)
        out = cls.from_block_mask(mask.reshape(mb, kb), values.to(dtype), block_size)
        return out.to(device) if device is not None else out

    @classmethod
    def from_torch(cls, t: torch.Tensor) -> "BSRMatrix":
        """From a ``torch.sparse_bsr_tensor`` with square blocks."""
        op = "BSRMatrix.from_torch()"
        check(isinstance(t, torch.Tensor) and t.layout == torch.sparse_bsr, f"{op}: expected a torch sparse BSR tensor", TypeError)
        values = t.values()
        check(values.dim() == 3 and values.shape[-1] == values.shape[-2], f"{op}: blocks must be square, got {tuple(values.shape[-2:])}")
        return cls(t.crow_indices(), t.col_indices(), values, tuple(t.shape), int(values.shape[-1]))

