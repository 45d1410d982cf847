"""DLMC ``.smtx`` files: topology only.

Layout (integers separated by whitespace or commas)::

    nrows, ncols, nnz
    <nrows + 1 row offsets>
    <nnz column indices>

Some copies of the collection write one line of column indices per row instead of the offsets
line; :func:`read_smtx_topology` reads both.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..checks import FLOAT_DTYPES, check
from ..csr import CSRMatrix

__all__ = ["read_smtx_topology", "load_smtx", "save_smtx"]


def _ints(line: str, where: str = "") -> np.ndarray:
    """The integers of one line (commas or spaces between them); a ValueError naming ``where`` (the
    function, the file and the line) for anything else."""
    text = line.replace(",", " ").strip()
    try:
        return np.array(text.split(), dtype=np.int64) if text else np.zeros(0, dtype=np.int64)
    except (ValueError, OverflowError):
        shown = line if len(line) <= 60 else line[:57] + "..."
        raise ValueError(f"{where}: expected integers separated by commas or spaces, got {shown!r}") from None


def read_smtx_topology(path: str | os.PathLike) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Return ``((m, k), row_offsets, column_indices)`` (int64 numpy arrays) of an ``.smtx`` file."""
    op = "sgk.io.read_smtx_topology()"
    with open(path) as f:
        lines = f.read().splitlines()
    check(len(lines) >= 1, f"{op}: {path} is empty")
    header = _ints(lines[0], f"{op}: {path}, line 1")
    check(header.size == 3, f"{op}: {path}: first line must be 'nrows, ncols, nnz', got {lines[0]!r}")
    m, k, nnz = (int(v) for v in header)
    check(m >= 0 and k >= 0 and nnz >= 0, f"{op}: {path}: nrows, ncols and nnz must be >= 0, got {lines[0]!r}")
    rest = lines[1:]
    while len(rest) > m and not rest[-1].strip():
        rest = rest[:-1]  # trailing blank lines
    ints = [_ints(ln, f"{op}: {path}, line {i}") for i, ln in enumerate(rest, 2)]
    looks_like_offsets = bool(rest) and len(rest) <= 2 and ints[0].size == m + 1
    per_row = ints if len(rest) == m else None
    offsets = cols = None
    if looks_like_offsets:
        # The DLMC layout: an offsets line, then the column indices (one line; absent when nnz = 0).
        first = ints[0]
        tail = ints[1] if len(rest) == 2 else np.zeros(0, dtype=np.int64)
        consistent = int(first[0]) == 0 and int(first[-1]) == nnz and tail.size == nnz and bool(np.all(np.diff(first) >= 0))
        if consistent or per_row is None or sum(r.size for r in per_row) != nnz:
            offsets, cols = first, tail
    if offsets is None:
        # One line of column indices per row (empty lines for empty rows).
        check(
            per_row is not None,
            f"{op}: {path}: expected {m} rows of column indices or an offsets line of {m + 1} entries "
            f"followed by the column indices; found {len(rest)} lines",
        )
        lengths = np.array([r.size for r in per_row], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        cols = np.concatenate(per_row) if per_row else np.zeros(0, dtype=np.int64)
    check(offsets.size == m + 1, f"{op}: {path}: expected {m + 1} row offsets, got {offsets.size}")
    check(cols.size == nnz, f"{op}: {path}: header says nnz = {nnz} but {cols.size} column indices follow")
    check(int(offsets[-1]) == nnz, f"{op}: {path}: last row offset {int(offsets[-1])} != nnz {nnz}")
    return (m, k), offsets, cols


def load_smtx(
    path: str | os.PathLike,
    *,
    values: torch.Tensor | str | None = "random",
    dtype: torch.dtype = torch.float32,
    device: Any = None,
    generator: torch.Generator | None = None,
    batch_shape: tuple[int, ...] = (),
    validate: bool = True,
) -> CSRMatrix:
    """Load an ``.smtx`` topology as a CSRMatrix.

    Args:
        values: ``"random"`` (N(0, 1), from ``generator``), ``"ones"``, or a (*batch, nnz) tensor.
        dtype, device: of the values (and the topology's device).
        batch_shape: leading batch shape for drawn values.
        validate: run :meth:`CSRMatrix.validate` (sorted, in-range indices).
    """
    op = "sgk.io.load_smtx()"
    check(dtype in FLOAT_DTYPES, f"{op}: dtype must be floating, got {dtype}", TypeError)
    (m, k), offsets, cols = read_smtx_topology(path)
    nnz = cols.size
    if isinstance(values, torch.Tensor):
        vals = values.to(dtype=dtype)
    elif values in ("random", None):
        vals = torch.randn(*batch_shape, nnz, generator=generator, dtype=torch.float32).to(dtype)
    elif values == "ones":
        vals = torch.ones(*batch_shape, nnz, dtype=dtype)
    else:
        raise ValueError(f"{op}: values must be 'random', 'ones' or a tensor, got {values!r}")
    a = CSRMatrix(torch.from_numpy(offsets), torch.from_numpy(cols), vals.cpu(), (m, k))
    if validate:
        a.validate()
    return a.to(device) if device is not None else a


def save_smtx(path: str | os.PathLike, a: CSRMatrix) -> None:
    """Write the topology of ``a`` as an ``.smtx`` file (values are not stored)."""
    check(isinstance(a, CSRMatrix), f"sgk.io.save_smtx(): a must be a CSRMatrix, got {type(a).__name__}", TypeError)
    m, k = a.shape
    offsets = a.row_offsets.cpu().numpy()
    cols = a.column_indices.cpu().numpy()
    with open(path, "w") as f:
        f.write(f"{m}, {k}, {a.nnz}\n")
        f.write(" ".join(map(str, offsets.tolist())) + "\n")
        f.write(" ".join(map(str, cols.tolist())) + "\n")
