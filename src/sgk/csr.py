"""CSRMatrix: a sparse matrix in compressed-sparse-row form, with an optional batch of values.

The topology (``row_offsets``, ``column_indices``, ``shape``) lives in a :class:`Topology`, which
also caches what the kernels derive from it, computed once on the topology's device: the row
swizzle (rows ordered longest first), the COO row index of every nonzero, the longest row, and the
transposed topology with the permutation that carries values into it. Matrices made by
``with_values`` or by the ops share their input's topology object and therefore its cache.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from .checks import FLOAT_DTYPES, INDEX_DTYPES, INT32_MAX, capturing, check, check_fraction, check_matrix_shape

__all__ = ["CSRMatrix", "Topology"]


def _to_int32(op: str, name: str, t: torch.Tensor, upper: int) -> torch.Tensor:
    """Index tensor as contiguous int32, refusing values that int32 (or the matrix) cannot hold."""
    check(
        t.dtype in INDEX_DTYPES,
        f"{op}: {name} must be an int32 or int64 tensor, got {str(t.dtype).replace('torch.', '')}",
        TypeError,
    )
    check(t.dim() == 1, f"{op}: {name} must be 1-D, got shape {tuple(t.shape)}")
    if t.dtype == torch.int64 and t.numel() > 0:
        lo, hi = int(t.min()), int(t.max())
        check(
            lo >= 0 and hi <= min(upper, INT32_MAX),
            f"{op}: {name} holds values in [{lo}, {hi}], outside [0, {min(upper, INT32_MAX)}]"
            + (" (sgk stores indices as int32: at most 2**31 - 1)" if hi > INT32_MAX else ""),
        )
    return t.to(torch.int32).contiguous()


def swizzled_bounds(row_offsets: torch.Tensor, row_swizzle: torch.Tensor) -> torch.Tensor:
    """(2, m) of row_offsets' dtype: for swizzle slot s, its row's first offset and end offset
    (``row_offsets[row_swizzle[s]]``, ``row_offsets[row_swizzle[s] + 1]``), as
    :attr:`Topology.row_bounds` holds them."""
    return torch.stack([row_offsets[:-1].index_select(0, row_swizzle), row_offsets[1:].index_select(0, row_swizzle)])


class Topology:
    """The sparsity pattern of an m×k CSR matrix and the metadata derived from it.

    Derived tensors are computed lazily on the topology's device and cached; treat the index
    tensors as immutable once a Topology has been built from them.
    """

    def __init__(self, row_offsets: torch.Tensor, column_indices: torch.Tensor, shape: tuple[int, int]):
        self.row_offsets = row_offsets
        self.column_indices = column_indices
        self.shape = (int(shape[0]), int(shape[1]))
        self._cache: dict[str, Any] = {}
        self._transposed: tuple[Topology, torch.Tensor] | None = None

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.row_offsets.device

    @property
    def nnz(self) -> int:
        return int(self.column_indices.numel())

    def _cached(self, key: str, fn):
        if key in self._cache:
            return self._cache[key]
        value = fn()
        # Built inside a CUDA-graph capture, a table's contents exist only once the graph is
        # replayed: it serves the captured call but is not kept for eager calls.
        if not capturing(self.row_offsets.device):
            self._cache[key] = value
        return value

    @property
    def row_lengths(self) -> torch.Tensor:
        """Nonzeros per row (int32, m)."""
        return self._cached("row_lengths", lambda: (self.row_offsets[1:] - self.row_offsets[:-1]).to(torch.int32))

    @property
    def row_swizzle(self) -> torch.Tensor:
        """Row indices ordered by row length, longest first (int32, m): the paper's load balancing.

        Programs that take rows in this order start the longest work first, and neighbouring
        programs get rows of similar length, so that subwarp/row tiles do even work.
        """

        def make():
            order = torch.argsort(self.row_lengths, descending=True, stable=True)
            return order.to(torch.int32)

        return self._cached("row_swizzle", make)

    @property
    def row_bounds(self) -> torch.Tensor:
        """The swizzled rows' offsets in swizzle order ((2, m), row_offsets' dtype):
        ``row_bounds[0, s]`` and ``row_bounds[1, s]`` are the first and end offsets of row
        ``row_swizzle[s]``. The gather kernels load them beside the swizzle rather than after it:
        one dependent memory access fewer before a program's first nonzero."""

        return self._cached("row_bounds", lambda: swizzled_bounds(self.row_offsets, self.row_swizzle))

    @property
    def row_indices(self) -> torch.Tensor:
        """The row of each nonzero (int32, nnz): the COO form of the pattern."""

        def make():
            m = self.shape[0]
            rows = torch.arange(m, device=self.device, dtype=torch.int32)
            return torch.repeat_interleave(rows, self.row_lengths.to(torch.int64), output_size=self.nnz)

        return self._cached("row_indices", make)

    @property
    def column_indices16(self) -> torch.Tensor | None:
        """The column indices as int16 (nnz) when k <= 32767, else None: the SpMM kernels' compact
        form where the matrix's own bytes are the cost (a bf16 nonzero is then 4 bytes, not 6)."""
        if self.shape[1] > 32767:
            return None
        return self._cached("column_indices16", lambda: self.column_indices.to(torch.int16))

    @property
    def bitmap(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The pattern as a bitmap, for the SpMM kernel that decodes dense tiles of A and multiplies
        them on tensor cores (``sgk.spmm`` builds it on first use for fp16/bf16 inference calls):
        ``(bits, word_offsets)``, both int32 (m, kw)
        with kw = k rounded up to 256 columns, in 32-bit words. Bit s of ``bits[r, w]`` is set iff
        column 32·w + s of row r is stored; ``word_offsets[r, w]`` is the CSR position of that
        word's first stored entry, so an entry's value is ``values[word_offsets + (set bits below
        it)]``: the values stay in CSR order. Two bits per matrix element (k·m/4 bytes).

        None where it cannot pay or cannot be built: density below 1/64 (the bitmap would be more
        than 8x the bytes of fp16 values; ``sgk.spmm``'s automatic choice offers it only from
        density 1/32), more than 2**31 bytes, or column indices not strictly increasing within
        rows (``validate()`` checks that invariant). Building it synchronises with the device once
        (call it, or ``prepare(bitmap=True)``, before a CUDA-graph capture or a
        ``torch.compile(fullgraph=True)`` region that uses it).
        """
        return self._cached("bitmap", self._make_bitmap)

    def _make_bitmap(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        m, k = self.shape
        kw = -(-k // 256) * 8
        if m == 0 or k == 0 or self.nnz * 64 < m * k or m * kw * 8 > 2**31:
            return None
        rows = self.row_indices.to(torch.int64)
        cols = self.column_indices.to(torch.int64)
        word = rows * kw + (cols >> 5)
        if self.nnz > 1 and not bool(((rows[1:] > rows[:-1]) | ((rows[1:] == rows[:-1]) & (cols[1:] > cols[:-1]))).all()):
            return None
        bit = torch.ones_like(cols) << (cols & 31)
        # Entries are sorted by (row, column), so each word's entries are consecutive; the bits of
        # one word are distinct, so their sum is their OR.
        first = torch.ones(self.nnz, dtype=torch.bool, device=self.device)
        first[1:] = word[1:] != word[:-1]
        starts = torch.nonzero(first).squeeze(1)
        ends = torch.cat([starts[1:], starts.new_tensor([self.nnz])]) - 1
        total = torch.cumsum(bit, 0)
        sums = total[ends] - total[starts] + bit[starts]
        sums = torch.where(sums >= 2**31, sums - 2**32, sums).to(torch.int32)
        bits = torch.zeros(m * kw, dtype=torch.int32, device=self.device)
        offsets = torch.zeros(m * kw, dtype=torch.int32, device=self.device)
        bits[word[starts]] = sums
        offsets[word[starts]] = starts.to(torch.int32)
        return bits.view(m, kw), offsets.view(m, kw)

    @property
    def max_row_length(self) -> int:
        """Length of the longest row (host int; computed once, one device sync)."""
        return self._cached("max_row_length", lambda: int(self.row_lengths.max()) if self.shape[0] > 0 else 0)

    def stats(self) -> dict[str, float]:
        """Row-length statistics: mean, std, coefficient of variation, max (host values)."""

        def make():
            lengths = self.row_lengths.double()
            mean = float(lengths.mean()) if lengths.numel() else 0.0
            std = float(lengths.std(unbiased=False)) if lengths.numel() else 0.0
            return {"mean": mean, "std": std, "cv": std / mean if mean else 0.0, "max": float(self.max_row_length)}

        return self._cached("stats", make)

    # -- transpose -----------------------------------------------------------------------------
    def transpose(self) -> tuple["Topology", torch.Tensor]:
        """The k×m transposed topology and ``perm`` with ``values_t = values[..., perm]`` (cached both ways)."""
        if self._transposed is None:
            m, k = self.shape
            cols = self.column_indices.to(torch.int64)
            # Entries are sorted by (row, col); a stable sort by col gives (col, row) order.
            perm = torch.argsort(cols, stable=True)
            t_cols = self.row_indices[perm].contiguous()
            counts = torch.bincount(cols, minlength=k) if self.nnz else torch.zeros(k, dtype=torch.int64, device=self.device)
            t_offsets = torch.zeros(k + 1, dtype=torch.int32, device=self.device)
            t_offsets[1:] = torch.cumsum(counts, 0).to(torch.int32)
            t = Topology(t_offsets, t_cols, (k, m))
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(perm.numel(), device=self.device)
            perm32, inverse32 = perm.to(torch.int32), inverse.to(torch.int32)
            self._transposed = (t, perm32)
            t._transposed = (self, inverse32)
        return self._transposed

    def prepare(self, transpose: bool = False, bitmap: bool = False) -> "Topology":
        """Compute the cached metadata now (and the transposed topology's, if asked; the bitmap
        form too if asked), so that no cache is filled later inside autograd's backward (which
        torch.compile cannot trace)."""
        self.row_swizzle, self.row_bounds, self.row_indices, self.column_indices16  # noqa: B018 (computing the cached properties)
        if bitmap:
            self.bitmap  # noqa: B018
        if transpose:
            t, _ = self.transpose()
            t.row_swizzle, t.row_bounds, t.row_indices, t.column_indices16  # noqa: B018
        return self

    @staticmethod
    def block_diagonal(topologies: Sequence["Topology"]) -> "Topology":
        """The (Σm)×(Σk) topology with ``topologies`` on its diagonal (see CSRMatrix.block_diagonal)."""
        op = "CSRMatrix.block_diagonal()"
        dev = topologies[0].device
        row_parts = [torch.zeros(1, dtype=torch.int64, device=dev)]
        col_parts = []
        nnz_base = row_base = col_base = 0
        for i, t in enumerate(topologies):
            check(t.device == dev, f"{op}: pattern {i} is on {t.device}, pattern 0 on {dev}")
            row_parts.append(t.row_offsets[1:].to(torch.int64) + nnz_base)
            col_parts.append(t.column_indices.to(torch.int64) + col_base)
            nnz_base += t.nnz
            row_base += t.shape[0]
            col_base += t.shape[1]
        check(
            max(nnz_base, row_base, col_base) <= INT32_MAX,
            f"{op}: the block-diagonal matrix ({row_base}×{col_base}, nnz {nnz_base}) exceeds int32 indexing",
        )
        offsets = torch.cat(row_parts).to(torch.int32)
        cols = torch.cat(col_parts).to(torch.int32) if col_parts else torch.zeros(0, dtype=torch.int32, device=dev)
        return Topology(offsets, cols, (row_base, col_base))

    def to(self, device: torch.device) -> "Topology":
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:  # "cuda" is the current device: cache under its index
            device = torch.device("cuda", torch.cuda.current_device())
        if device == self.device:
            return self
        key = f"on:{device}"
        return self._cached(key, lambda: Topology(self.row_offsets.to(device), self.column_indices.to(device), self.shape))


def _parse_to_args(args, kwargs, name: str = "CSRMatrix") -> tuple[torch.device | None, torch.dtype | None, bool]:
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    non_blocking = bool(kwargs.pop("non_blocking", False))
    kwargs.pop("copy", None)
    check(not kwargs, f"{name}.to(): unexpected keyword arguments {sorted(kwargs)}", TypeError)
    for arg in args:
        if isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, (str, torch.device, int)):
            device = torch.device(arg)
        elif isinstance(arg, torch.Tensor):
            device, dtype = arg.device, arg.dtype
        else:
            raise TypeError(f"{name}.to(): expected a device, dtype or tensor, got {type(arg).__name__}")
    return (torch.device(device) if device is not None else None), dtype, non_blocking


class _SparseValues:
    """What every sgk sparse matrix shares: a :class:`Topology`, values on it, and the tensor-like
    basics (device and dtype moves, autograd flags). Subclasses set ``_topology`` and ``_values``
    and implement :meth:`_rebuild` (the same kind of matrix on another topology/values)."""

    _topology: Topology
    _values: torch.Tensor

    def _rebuild(self, topology: Topology, values: torch.Tensor):
        raise NotImplementedError

    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def row_offsets(self) -> torch.Tensor:
        return self._topology.row_offsets

    @property
    def column_indices(self) -> torch.Tensor:
        return self._topology.column_indices

    @property
    def values(self) -> torch.Tensor:
        return self._values

    @property
    def dtype(self) -> torch.dtype:
        return self._values.dtype

    @property
    def device(self) -> torch.device:
        return self._values.device

    @property
    def requires_grad(self) -> bool:
        return self._values.requires_grad

    @property
    def sparsity(self) -> float:
        return 1.0 - self.density

    @property
    def T(self):
        return self.t()

    def to(self, *args, **kwargs):
        """Move to a device and/or cast values, like ``Tensor.to`` (dtype applies to values only)."""
        name = type(self).__name__
        device, dtype, non_blocking = _parse_to_args(args, dict(kwargs), name)
        if dtype is not None:
            check(dtype in FLOAT_DTYPES, f"{name}.to(): dtype must be floating, got {dtype}", TypeError)
        values = self._values.to(device=device, dtype=dtype, non_blocking=non_blocking)
        topo = self._topology.to(values.device)
        if topo is self._topology and values is self._values:
            return self
        return self._rebuild(topo, values)

    def cuda(self, device=None):
        return self.to(torch.device("cuda") if device is None else torch.device("cuda", device) if isinstance(device, int) else device)

    def cpu(self):
        return self.to("cpu")

    def detach(self):
        return self._rebuild(self._topology, self._values.detach())

    def requires_grad_(self, requires_grad: bool = True):
        self._values.requires_grad_(requires_grad)
        return self


class CSRMatrix(_SparseValues):
    """A sparse m×k matrix in CSR form whose values may carry leading batch dimensions.

    Args:
        row_offsets: (m + 1) int32/int64 tensor, ``row_offsets[i]:row_offsets[i+1]`` spans row i.
        column_indices: (nnz) int32/int64 tensor, column of each nonzero, sorted within rows.
        values: (*batch, nnz) floating tensor; every batch entry shares the one topology.
        shape: (m, k).

    Cheap checks (dtypes, shapes, devices, int32 range) run here; the O(nnz) invariants
    (offsets non-decreasing, indices sorted and in range) run in :meth:`validate`.
    Index tensors are stored as int32: int64 ones are converted (a copy), contiguous int32 ones are
    kept as given, not copied — do not modify them in place afterwards (the topology's cached
    metadata, e.g. its row indices, transpose and bitmap, would no longer match them).
    """

    def __init__(
        self,
        row_offsets: torch.Tensor,
        column_indices: torch.Tensor,
        values: torch.Tensor,
        shape: Sequence[int],
    ):
        op = "CSRMatrix()"
        m, k = check_matrix_shape(op, shape)
        check(m <= INT32_MAX and k <= INT32_MAX, f"{op}: shape {(m, k)} exceeds int32 indexing (2**31 - 1)")
        for name, t in (("row_offsets", row_offsets), ("column_indices", column_indices), ("values", values)):
            check(isinstance(t, torch.Tensor), f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}", TypeError)
        check(
            values.dtype in FLOAT_DTYPES,
            f"{op}: values must be a floating tensor (float32, float16, bfloat16, float64), got "
            f"{str(values.dtype).replace('torch.', '')}",
            TypeError,
        )
        check(values.dim() >= 1, f"{op}: values must have shape (*batch, nnz), got a 0-d tensor")
        check(
            row_offsets.device == column_indices.device == values.device,
            f"{op}: row_offsets, column_indices and values must be on one device, got "
            f"{row_offsets.device}, {column_indices.device}, {values.device}",
        )
        check(
            row_offsets.dim() == 1 and row_offsets.numel() == m + 1,
            f"{op}: row_offsets must have m + 1 = {m + 1} entries, got shape {tuple(row_offsets.shape)}",
        )
        nnz = column_indices.numel()
        check(nnz <= INT32_MAX, f"{op}: nnz = {nnz} exceeds int32 indexing (2**31 - 1)")
        check(
            values.shape[-1] == nnz,
            f"{op}: values must have shape (*batch, nnz) with nnz = {nnz}, got {tuple(values.shape)}",
        )
        row_offsets = _to_int32(op, "row_offsets", row_offsets, nnz)
        column_indices = _to_int32(op, "column_indices", column_indices, max(k - 1, 0))
        self._topology = Topology(row_offsets, column_indices, (m, k))
        self._values = values

    @classmethod
    def _make(cls, topology: Topology, values: torch.Tensor) -> "CSRMatrix":
        """Internal constructor: no checks (topology and values already known to agree)."""
        obj = cls.__new__(cls)
        obj._topology = topology
        obj._values = values
        return obj

    def _rebuild(self, topology: Topology, values: torch.Tensor) -> "CSRMatrix":
        return CSRMatrix._make(topology, values)

    # -- properties ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self._topology.shape

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self._values.shape[:-1])

    @property
    def nnz(self) -> int:
        return self._topology.nnz

    @property
    def density(self) -> float:
        m, k = self.shape
        return self.nnz / (m * k) if m * k else 0.0

    @property
    def row_swizzle(self) -> torch.Tensor:
        return self._topology.row_swizzle

    @property
    def row_indices(self) -> torch.Tensor:
        return self._topology.row_indices

    def __repr__(self) -> str:
        batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
        return (
            f"CSRMatrix(shape={self.shape}, nnz={self.nnz}, sparsity={self.sparsity:.3f}{batch}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    # -- derived matrices ----------------------------------------------------------------------
    def with_values(self, values: torch.Tensor) -> "CSRMatrix":
        """The same topology (and cached metadata) with new values of shape (*batch, nnz)."""
        check(isinstance(values, torch.Tensor), f"CSRMatrix.with_values(): values must be a tensor, got {type(values).__name__}", TypeError)
        check(values.dtype in FLOAT_DTYPES, f"CSRMatrix.with_values(): values must be floating, got {values.dtype}", TypeError)
        check(
            values.dim() >= 1 and values.shape[-1] == self.nnz,
            f"CSRMatrix.with_values(): values must have shape (*batch, {self.nnz}), got {tuple(values.shape)}",
        )
        check(
            values.device == self.device,
            f"CSRMatrix.with_values(): values are on {values.device} but the topology is on {self.device}",
        )
        return CSRMatrix._make(self._topology, values)

    def t(self) -> "CSRMatrix":
        """The k×m transpose. The transposed topology is cached, so this is one gather of values
        (differentiable)."""
        t_topo, perm = self._topology.transpose()
        return CSRMatrix._make(t_topo, self._values.index_select(-1, perm) if self.nnz else self._values)

    # -- conversions ---------------------------------------------------------------------------
    def to_dense(self) -> torch.Tensor:
        """Dense (*batch, m, k) tensor (differentiable in values)."""
        m, k = self.shape
        dense = self._values.new_zeros(*self.batch_shape, m * k)
        if self.nnz:
            flat = self.row_indices.to(torch.int64) * k + self.column_indices.to(torch.int64)
            dense = dense.index_copy(-1, flat, self._values)
        return dense.reshape(*self.batch_shape, m, k)

    def to_torch(self) -> torch.Tensor:
        """A ``torch.sparse_csr_tensor`` (batched CSR when values carry batch dimensions)."""
        m, k = self.shape
        batch = self.batch_shape
        crow, col = self.row_offsets, self.column_indices
        if batch:
            crow = crow.expand(*batch, m + 1).contiguous()
            col = col.expand(*batch, self.nnz).contiguous()
        return torch.sparse_csr_tensor(crow, col, self._values, size=(*batch, m, k))

    def validate(self) -> "CSRMatrix":
        """Check the O(nnz) invariants; raises ValueError naming the first one broken. Returns self."""
        op = "CSRMatrix.validate()"
        m, k = self.shape
        ro, ci = self.row_offsets.to(torch.int64), self.column_indices.to(torch.int64)
        check(int(ro[0]) == 0, f"{op}: row_offsets[0] must be 0, got {int(ro[0])}")
        check(int(ro[-1]) == self.nnz, f"{op}: row_offsets[-1] must equal nnz = {self.nnz}, got {int(ro[-1])}")
        if m:
            diffs = ro[1:] - ro[:-1]
            bad = torch.nonzero(diffs < 0)
            check(bad.numel() == 0, f"{op}: row_offsets must be non-decreasing; row {int(bad[0]) if bad.numel() else -1} has negative length")
        if self.nnz:
            bad = torch.nonzero((ci < 0) | (ci >= k))
            check(
                bad.numel() == 0,
                f"{op}: column_indices must lie in [0, {k}); entry {int(bad[0]) if bad.numel() else -1} is "
                f"{int(ci[bad[0]]) if bad.numel() else 0}",
            )
            rows = self.row_indices.to(torch.int64)
            same_row = rows[1:] == rows[:-1]
            bad = torch.nonzero(same_row & (ci[1:] <= ci[:-1]))
            check(
                bad.numel() == 0,
                f"{op}: column_indices must be strictly increasing within each row (sorted, no duplicates); "
                f"row {int(rows[bad[0] + 1]) if bad.numel() else -1} breaks this",
            )
        check(self._values.shape[-1] == self.nnz, f"{op}: values last dimension {self._values.shape[-1]} != nnz {self.nnz}")
        return self

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_dense(
        cls,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        sparsity: float | None = None,
    ) -> "CSRMatrix":
        """From a dense (*batch, m, k) tensor.

        The pattern is ``mask`` when given; else, with ``sparsity``, magnitude pruning keeps the
        ``round((1 - sparsity)·m·k)`` entries of largest magnitude (summed over the batch);
        else the entries that are nonzero in any batch element.
        """
        op = "CSRMatrix.from_dense()"
        check(isinstance(x, torch.Tensor) and x.layout == torch.strided, f"{op}: x must be a dense tensor", TypeError)
        check(x.dim() >= 2, f"{op}: x must have shape (*batch, m, k), got {tuple(x.shape)}")
        check(x.dtype in FLOAT_DTYPES, f"{op}: x must be floating, got {x.dtype}", TypeError)
        m, k = x.shape[-2:]
        batch_dims = tuple(range(x.dim() - 2))
        if mask is not None:
            check(sparsity is None, f"{op}: give mask or sparsity, not both")
            check(isinstance(mask, torch.Tensor) and tuple(mask.shape) == (m, k), f"{op}: mask must be an (m, k) = {(m, k)} tensor, got {getattr(mask, 'shape', type(mask).__name__)}")
            keep = mask.to(device=x.device, dtype=torch.bool)
        elif sparsity is not None:
            sparsity = check_fraction(op, "sparsity", sparsity)
            score = x.detach().abs().float()
            if batch_dims:
                score = score.sum(batch_dims)
            n_keep = int(round((1.0 - float(sparsity)) * m * k))
            keep = torch.zeros(m * k, dtype=torch.bool, device=x.device)
            if n_keep:
                keep[torch.topk(score.reshape(-1), n_keep, sorted=False).indices] = True
            keep = keep.reshape(m, k)
        else:
            keep = x.detach() != 0
            if batch_dims:
                keep = keep.any(dim=batch_dims[0]) if len(batch_dims) == 1 else keep.flatten(0, len(batch_dims) - 1).any(0)
        rows, cols = keep.nonzero(as_tuple=True)
        offsets = torch.zeros(m + 1, dtype=torch.int64, device=x.device)
        offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=m), 0)
        values = x[..., rows, cols]
        return cls(offsets, cols, values, (m, k))

    @classmethod
    def block_diagonal(cls, matrices: Sequence["CSRMatrix"]) -> "CSRMatrix":
        """One block-diagonal CSRMatrix from several: the per-sample topology form.

        ``B`` patterns of shape m×k (e.g. one attention topology per sample) become one
        (B·m)×(B·k) matrix whose diagonal block i is ``matrices[i]``. Every op then handles the
        whole batch in one launch on operands stacked along rows: ``spmm(a, b.reshape(B·k, n))``
        gives the B products stacked as (B·m, n), ``sddmm(x.reshape(B·m, d), y.reshape(B·k, d),
        a)`` the B samplings, ``sparse_softmax`` is row-wise already, and the row swizzle balances
        rows across samples. Values must share their batch shape (e.g. heads).
        """
        op = "CSRMatrix.block_diagonal()"
        mats = list(matrices)
        check(len(mats) > 0, f"{op}: expected at least one CSRMatrix")
        for i, a in enumerate(mats):
            check(isinstance(a, CSRMatrix), f"{op}: matrices[{i}] must be an sgk.CSRMatrix, got {type(a).__name__}", TypeError)
        first = mats[0]
        for i, a in enumerate(mats[1:], 1):
            check(a.device == first.device, f"{op}: matrices[{i}] is on {a.device}, matrices[0] on {first.device}")
            check(a.dtype == first.dtype, f"{op}: matrices[{i}] has dtype {a.dtype}, matrices[0] {first.dtype}", TypeError)
            check(
                a.batch_shape == first.batch_shape,
                f"{op}: every matrix needs the same values batch shape, matrices[{i}] has {a.batch_shape}, "
                f"matrices[0] {first.batch_shape}",
            )
        topo = Topology.block_diagonal([a.topology for a in mats])
        return cls._make(topo, torch.cat([a.values for a in mats], dim=-1))

    @classmethod
    def from_torch(cls, t: torch.Tensor) -> "CSRMatrix":
        """From a torch sparse CSR (2-D or batched with one shared pattern) or COO (2-D) tensor."""
        op = "CSRMatrix.from_torch()"
        check(isinstance(t, torch.Tensor), f"{op}: expected a torch sparse tensor, got {type(t).__name__}", TypeError)
        if t.layout == torch.sparse_coo:
            check(t.sparse_dim() == 2 and t.dense_dim() == 0, f"{op}: COO input must be 2-D with scalar values, got shape {tuple(t.shape)}")
            t = t.coalesce()
            rows, cols = t.indices()
            m, k = t.shape
            offsets = torch.zeros(m + 1, dtype=torch.int64, device=t.device)
            offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=m), 0)
            return cls(offsets, cols, t.values(), (m, k))
        if t.layout == torch.sparse_csr:
            crow, col, vals = t.crow_indices(), t.col_indices(), t.values()
            m, k = t.shape[-2:]
            if crow.dim() > 1:
                nb = math.prod(crow.shape[:-1])
                crow_flat, col_flat = crow.reshape(nb, m + 1), col.reshape(nb, col.shape[-1])
                check(
                    bool((crow_flat == crow_flat[:1]).all()) and bool((col_flat == col_flat[:1]).all()),
                    f"{op}: a batched CSR tensor must share one pattern across the batch "
                    "(for per-sample patterns, build one CSRMatrix per pattern)",
                )
                crow, col = crow_flat[0], col_flat[0]
            check(t.dense_dim() == 0, f"{op}: hybrid CSR tensors (dense_dim > 0) are not supported")
            return cls(crow, col, vals, (m, k))
        raise TypeError(
            f"{op}: expected layout torch.sparse_csr or torch.sparse_coo, got {t.layout}"
            + (" (use CSRMatrix.from_dense for dense tensors)" if t.layout == torch.strided else "")
        )

    @classmethod
    def from_scipy(cls, s: Any, *, dtype: torch.dtype | None = None, device: Any = None) -> "CSRMatrix":
        """From any scipy.sparse matrix/array (duplicates summed, indices sorted)."""
        op = "CSRMatrix.from_scipy()"
        check(hasattr(s, "tocsr") and hasattr(s, "shape"), f"{op}: expected a scipy.sparse matrix, got {type(s).__name__}", TypeError)
        s = s.tocsr(copy=True)
        s.sum_duplicates()
        s.sort_indices()
        values = torch.from_numpy(s.data.copy())
        if not values.is_floating_point():
            values = values.to(torch.float32)
        if dtype is not None:
            values = values.to(dtype)
        m, k = s.shape
        offsets = torch.from_numpy(s.indptr.astype("int64"))
        cols = torch.from_numpy(s.indices.astype("int64"))
        return cls(offsets, cols, values, (m, k)).to(device) if device is not None else cls(offsets, cols, values, (m, k))

    def to_scipy(self):
        """A ``scipy.sparse.csr_matrix`` (unbatched values only)."""
        import scipy.sparse

        check(not self.batch_shape, "CSRMatrix.to_scipy(): batched values have no scipy equivalent; index one batch first")
        v = self._values.detach().cpu()
        if v.dtype == torch.bfloat16:
            v = v.float()
        return scipy.sparse.csr_matrix(
            (v.numpy(), self.column_indices.cpu().numpy(), self.row_offsets.cpu().numpy()), shape=self.shape
        )

    @classmethod
    def random(
        cls,
        m: int,
        k: int,
        sparsity: float,
        *,
        distribution: str = "uniform",
        row_cv: float = 0.3,
        batch_shape: Sequence[int] = (),
        dtype: torch.dtype = torch.float32,
        device: Any = None,
        generator: torch.Generator | None = None,
    ) -> "CSRMatrix":
        """A random m×k pattern with ``round((1 - sparsity)·m·k)`` nonzeros and N(0, 1) values.

        ``distribution="uniform"``: every position equally likely (row lengths ≈ binomial).
        ``distribution="skewed"``: row lengths drawn from a gamma law with coefficient of
        variation ``row_cv`` (real pruned layers show about 0.1-0.8), columns uniform within rows.
        The pattern is drawn on the CPU (reproducible with ``generator``) and moved to ``device``.
        """
        op = "CSRMatrix.random()"
        m, k = check_matrix_shape(op, (m, k))
        sparsity = check_fraction(op, "sparsity", sparsity)
        check(distribution in ("uniform", "skewed"), f"{op}: distribution must be 'uniform' or 'skewed', got {distribution!r}")
        check(dtype in FLOAT_DTYPES, f"{op}: dtype must be floating, got {dtype}", TypeError)
        if generator is None:
            # Follow torch's global seed (torch.manual_seed makes this reproducible) without re-seeding it.
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        gen = generator
        if gen.device.type != "cpu":
            raise ValueError(f"{op}: generator must be a CPU generator (patterns are drawn on the CPU)")
        total = int(round((1.0 - sparsity) * m * k))
        if distribution == "uniform" or total == 0 or m == 0:
            flat = _sample_without_replacement(m * k, total, gen)
            rows, cols = flat // max(k, 1), flat % max(k, 1)
        else:
            lengths = _skewed_row_lengths(m, k, total, row_cv, gen)
            rows, cols = _columns_for_rows(lengths, k, gen)
        offsets = torch.zeros(m + 1, dtype=torch.int64)
        if m:
            offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=m), 0)
        values = torch.randn(*batch_shape, total, generator=gen, dtype=torch.float32).to(dtype)
        out = cls(offsets, cols, values, (m, k))
        return out.to(device) if device is not None else out


def _sample_without_replacement(population: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` distinct sorted integers from [0, population)."""
    if count == 0:
        return torch.zeros(0, dtype=torch.int64)
    if count * 4 < population:
        # Oversample then deduplicate: cheaper than a full permutation for sparse draws.
        picked = torch.empty(0, dtype=torch.int64)
        while picked.numel() < count:
            extra = torch.randint(0, population, (int((count - picked.numel()) * 1.2) + 16,), generator=gen)
            picked = torch.unique(torch.cat([picked, extra]))
        keep = torch.randperm(picked.numel(), generator=gen)[:count]
        return torch.sort(picked[keep]).values
    return torch.sort(torch.randperm(population, generator=gen)[:count]).values


def _skewed_row_lengths(m: int, k: int, total: int, cv: float, gen: torch.Generator) -> torch.Tensor:
    """m row lengths summing to ``total``, each in [0, k], with coefficient of variation ≈ cv."""
    shape = 1.0 / max(cv, 1e-3) ** 2
    # Gamma(shape) sample via torch's _standard_gamma, which takes no generator: draw normals instead
    # and use the Wilson-Hilferty cube approximation, good for shape >= 1 and deterministic under gen.
    z = torch.randn(m, generator=gen, dtype=torch.float64)
    c = 1.0 / (9.0 * shape)
    g = shape * torch.clamp(1.0 - c + z * math.sqrt(c), min=0.0) ** 3
    weights = g / g.sum() if float(g.sum()) > 0 else torch.full((m,), 1.0 / m, dtype=torch.float64)
    lengths = torch.clamp(torch.floor(weights * total), 0, k).to(torch.int64)
    # Distribute the remainder to rows with room, largest fractional part first.
    deficit = total - int(lengths.sum())
    while deficit > 0:
        room = (lengths < k).nonzero().flatten()
        if room.numel() == 0:
            break
        frac = (weights * total - lengths.double())[room]
        take = room[torch.argsort(frac, descending=True)[:deficit]]
        lengths[take] += 1
        deficit = total - int(lengths.sum())
    return lengths


def _columns_for_rows(lengths: torch.Tensor, k: int, gen: torch.Generator, chunk: int = 1 << 22):
    """Uniform distinct sorted columns for each row with the given lengths; returns COO (rows, cols)."""
    m = lengths.numel()
    rows_out, cols_out = [], []
    step = max(1, chunk // max(k, 1))
    for start in range(0, m, step):
        lens = lengths[start : start + step]
        keys = torch.rand(lens.numel(), k, generator=gen)
        rank = torch.argsort(keys, dim=1)  # a random permutation of columns per row
        lmax = int(lens.max()) if lens.numel() else 0
        take = torch.arange(lmax)[None, :] < lens[:, None]
        cols = torch.sort(torch.where(take, rank[:, :lmax], k), dim=1).values
        sel = cols < k
        rows_out.append((torch.arange(lens.numel())[:, None] + start).expand_as(cols)[sel])
        cols_out.append(cols[sel])
    return torch.cat(rows_out), torch.cat(cols_out)
