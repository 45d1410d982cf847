"""Shared helpers for the op tests: seeded data, hand-built patterns, poisoned kernel outputs.

Imported by the test modules as ``from _helpers import ...`` (pytest puts tests/ on sys.path).
"""
from __future__ import annotations

import os
from typing import Sequence

import pytest
import torch

import sgk
from sgk.testing import INTERPRETER_BF16_SLACK

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

KERNEL_DTYPES = [
    pytest.param(torch.float32, id="float32"),
    pytest.param(torch.float16, id="float16"),
    pytest.param(torch.bfloat16, id="bfloat16"),
]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, g: torch.Generator, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """N(0, 1) data drawn on the CPU from ``g`` (reproducible), then cast and moved."""
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)


def csr_from_lengths(
    lengths: Sequence[int],
    k: int,
    g: torch.Generator,
    *,
    batch: Sequence[int] = (),
    dtype=torch.float32,
    device="cpu",
    cols_from_end: bool = False,
) -> sgk.CSRMatrix:
    """An m×k CSRMatrix whose row i has ``lengths[i]`` nonzeros at random distinct sorted columns
    (the last columns of the row when ``cols_from_end``) and N(0, 1) values, never zero."""
    rows = []
    for length in lengths:
        assert 0 <= length <= k
        if cols_from_end:
            cols = torch.arange(k - length, k)
        else:
            cols = torch.sort(torch.randperm(k, generator=g)[:length]).values
        rows.append(cols)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor(list(lengths), dtype=torch.int64), 0)
    cols = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.int64)
    nnz = cols.numel()
    values = randn(*batch, nnz, g=g)
    values = values + torch.where(values >= 0, 0.1, -0.1)  # keep away from 0
    a = sgk.CSRMatrix(offsets, cols, values.to(dtype), (len(lengths), k))
    return a.to(device)


def bf16_slack(dtype: torch.dtype) -> float:
    """The interpreter truncates fp32→bf16 instead of rounding (DESIGN.md): allow a few more ulps."""
    return INTERPRETER_BF16_SLACK if (dtype == torch.bfloat16 and INTERPRET) else 1.0


class _PoisonTorch:
    """``torch`` as seen by a kernel launcher module, with ``empty``/``empty_like`` NaN-filled, so
    that an output element the kernel forgets to write shows up as NaN (not as stale memory that
    happens to hold the right value)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    @staticmethod
    def _fill(t):
        return t.fill_(float("nan")) if t.is_floating_point() else t.fill_(-(2**30))

    def empty(self, *args, **kwargs):
        return self._fill(self._real.empty(*args, **kwargs))

    def empty_like(self, *args, **kwargs):
        return self._fill(self._real.empty_like(*args, **kwargs))


def poison_kernel_outputs(monkeypatch) -> None:
    """Make every kernel launcher allocate NaN-filled outputs for the rest of the test."""
    if not (INTERPRET or torch.cuda.is_available()):
        return
    import importlib

    for name in ("spmm", "sddmm", "softmax", "bsr"):
        try:
            mod = importlib.import_module(f"sgk.kernels.{name}")
        except ImportError:  # pragma: no cover - triton missing
            continue
        monkeypatch.setattr(mod, "torch", _PoisonTorch(torch))


# Neutral values for flags a registered op may grow (the schema, not the test, decides the order).
_NEUTRAL = {"causal": False, "relu": False, "bias": None, "column_indices16": None, "bitmap": None, "word_offsets": None}


def op_args(op, a: sgk.CSRMatrix, **given) -> tuple:
    """Positional arguments for a registered ``torch.ops.sgk.*`` overload, in its schema's order:
    ``given`` first, then what the topology of ``a`` provides, then neutral flags."""
    derived = {
        "row_offsets": a.row_offsets,
        "column_indices": a.column_indices,
        "row_indices": a.row_indices,
        "row_swizzle": a.row_swizzle,
        "max_row": a.topology.max_row_length,
        "row_bounds": a.topology.row_bounds,
    }
    args = []
    for arg in op._schema.arguments:
        for source in (given, derived, _NEUTRAL):
            if arg.name in source:
                args.append(source[arg.name])
                break
        else:
            raise KeyError(f"{op}: the test does not know argument {arg.name!r}; update tests/_helpers.py op_args")
    return tuple(args)
