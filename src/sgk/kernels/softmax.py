"""Sparse softmax over each CSR row's nonzeros, forward and backward.

One program per (row, batch entry). When every row fits in one block (``SINGLE``, rows up to 4096
nonzeros: attention topologies) the row is read once and written once, rows in their own order (the
swizzle lookup is one more dependent memory latency before the data, and these programs are short);
longer rows go in swizzle order.
Otherwise, forward: one pass keeps a running max and a running sum of exponentials (rescaled when
the max grows), a second pass writes exp(scale·x − max) / sum. A row whose entries are all −inf, or an empty row, writes zeros (never
NaN). Backward: one pass for Σ g·y, one pass writing scale · y · (g − Σ g·y).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import MAX_GRID_YZ, cdiv, next_power_of_2
from ._launch import launch
from ._tuning import BucketTuner, exact_cache, pow2_bucket, remember


@triton.jit
def _softmax_kernel(
    # pointers
    row_offsets_ptr,
    column_indices_ptr,
    row_swizzle_ptr,
    x_ptr,
    y_ptr,
    # strides
    stride_xb,
    stride_yb,
    # scalars
    scale,
    m,
    # meta-parameters
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
    CAUSAL: tl.constexpr,
    ROWS: tl.constexpr = 1,
):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    x_base = x_ptr + pid_b * stride_xb
    y_base = y_ptr + pid_b * stride_yb
    offs0 = tl.arange(0, BLOCK)
    if SINGLE:
        # Every row fits in one block: read once, write once; ROWS rows per program, in their own
        # order (no swizzle: one dependent load less before the data, and these programs are short).
        rows = pid * ROWS + tl.arange(0, ROWS)
        rmask = rows < m
        r_start = tl.load(row_offsets_ptr + rows, mask=rmask, other=0)
        r_end = tl.load(row_offsets_ptr + rows + 1, mask=rmask, other=0)
        r_offs = r_start[:, None] + offs0[None, :]
        r_mask = r_offs < r_end[:, None]
        keep = r_mask
        xv = tl.load(x_base + r_offs, mask=r_mask, other=0.0).to(tl.float32) * scale
        if CAUSAL:  # entries above the diagonal count as absent (and are written as 0)
            keep = r_mask & (tl.load(column_indices_ptr + r_offs, mask=r_mask, other=0) <= rows[:, None])
        xv = tl.where(keep, xv, float("-inf"))
        r_max = tl.max(xv, axis=1)
        r_safe = tl.where(r_max == float("-inf"), 0.0, r_max)
        ev = tl.exp(xv - r_safe[:, None])
        r_total = tl.sum(ev, axis=1)
        r_inv = tl.where(r_total > 0.0, 1.0 / r_total, 0.0)
        tl.store(y_base + r_offs, (ev * r_inv[:, None]).to(y_ptr.dtype.element_ty), mask=r_mask)
    else:
        row = tl.load(row_swizzle_ptr + pid)
        start = tl.load(row_offsets_ptr + row)
        end = tl.load(row_offsets_ptr + row + 1)
        run_max = tl.full([BLOCK], float("-inf"), tl.float32)
        run_sum = tl.zeros([BLOCK], dtype=tl.float32)
        for s in range(start, end, BLOCK):
            offs = s + offs0
            mask = offs < end
            v = tl.load(x_base + offs, mask=mask, other=0.0).to(tl.float32) * scale
            if CAUSAL:
                mask = mask & (tl.load(column_indices_ptr + offs, mask=mask, other=0) <= row)
            v = tl.where(mask, v, float("-inf"))  # after scaling: a scale <= 0 must not flip padding
            # (this pass only reads, so narrowing the mask is safe)
            new_max = tl.maximum(run_max, v)
            safe = tl.where(new_max == float("-inf"), 0.0, new_max)
            run_sum = run_sum * tl.exp(run_max - safe) + tl.exp(v - safe)
            run_max = new_max
        row_max = tl.max(run_max, axis=0)
        safe_max = tl.where(row_max == float("-inf"), 0.0, row_max)
        lane = tl.where(run_max == float("-inf"), 0.0, run_sum * tl.exp(run_max - safe_max))
        total = tl.sum(lane, axis=0)
        inv = tl.where(total > 0.0, 1.0 / total, 0.0)
        for s in range(start, end, BLOCK):
            offs = s + offs0
            mask = offs < end
            v = tl.load(x_base + offs, mask=mask, other=0.0).to(tl.float32) * scale
            out = tl.exp(v - safe_max) * inv
            if CAUSAL:
                out = tl.where(tl.load(column_indices_ptr + offs, mask=mask, other=0) <= row, out, 0.0)
            tl.store(y_base + offs, out.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _softmax_backward_kernel(
    # pointers
    row_offsets_ptr,
    row_swizzle_ptr,
    y_ptr,
    g_ptr,
    dx_ptr,
    # strides
    stride_yb,
    stride_gb,
    stride_dxb,
    # scalars
    scale,
    m,
    # meta-parameters
    BLOCK: tl.constexpr,
    SINGLE: tl.constexpr,
    ROWS: tl.constexpr = 1,
):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    y_base = y_ptr + pid_b * stride_yb
    g_base = g_ptr + pid_b * stride_gb
    dx_base = dx_ptr + pid_b * stride_dxb
    offs0 = tl.arange(0, BLOCK)
    if SINGLE:
        rows = pid * ROWS + tl.arange(0, ROWS)
        rmask = rows < m
        r_start = tl.load(row_offsets_ptr + rows, mask=rmask, other=0)
        r_end = tl.load(row_offsets_ptr + rows + 1, mask=rmask, other=0)
        r_offs = r_start[:, None] + offs0[None, :]
        r_mask = r_offs < r_end[:, None]
        yv = tl.load(y_base + r_offs, mask=r_mask, other=0.0).to(tl.float32)
        gv = tl.load(g_base + r_offs, mask=r_mask, other=0.0).to(tl.float32)
        r_total = tl.sum(yv * gv, axis=1)
        tl.store(dx_base + r_offs, (scale * yv * (gv - r_total[:, None])).to(dx_ptr.dtype.element_ty), mask=r_mask)
    else:
        row = tl.load(row_swizzle_ptr + pid)
        start = tl.load(row_offsets_ptr + row)
        end = tl.load(row_offsets_ptr + row + 1)
        dot = tl.zeros([BLOCK], dtype=tl.float32)
        for s in range(start, end, BLOCK):
            offs = s + offs0
            mask = offs < end
            y = tl.load(y_base + offs, mask=mask, other=0.0).to(tl.float32)
            g = tl.load(g_base + offs, mask=mask, other=0.0).to(tl.float32)
            dot += y * g
        total = tl.sum(dot, axis=0)
        for s in range(start, end, BLOCK):
            offs = s + offs0
            mask = offs < end
            y = tl.load(y_base + offs, mask=mask, other=0.0).to(tl.float32)
            g = tl.load(g_base + offs, mask=mask, other=0.0).to(tl.float32)
            tl.store(dx_base + offs, (scale * y * (g - total)).to(dx_ptr.dtype.element_ty), mask=mask)


SINGLE_PASS_MAX = 4096
"""Rows up to this long are read once (one block holds the row); longer rows take two passes."""


def _block(max_row: int) -> tuple[int, bool, int]:
    """(BLOCK, SINGLE, num_warps) for a topology whose longest row has ``max_row`` nonzeros."""
    if max_row <= SINGLE_PASS_MAX:
        block = max(32, next_power_of_2(max_row))
        return block, True, max(1, min(16, block // 256))
    return 1024, False, 4


_TUNER = BucketTuner("softmax")


_CHOSEN = exact_cache()
"""Exact problem -> (rows, warps): one dict lookup per call after the first (the bucketed tuner
below decides it once per bucket)."""


def _shape(kind: str, kernel_args: tuple, launch_one, x: torch.Tensor, block: int, single: bool, warps: int, m: int) -> tuple[int, int]:
    """(rows per program, warps): the heuristic (1, ``warps``), its halving and doubling, and (for
    single-block rows) 2 or 4 rows per program, timed once per bucketed key (direction, dtype,
    block, rows×batch) when autotuning is on. Short programs are latency-bound: two dependent loads
    (row offsets, then the row) before any data moves, so more rows in flight per program can pay."""
    exact = (kind, x.dtype, x.device, block, single, m, x.shape[0], *kernel_args)
    chosen = _CHOSEN.get(exact)
    if chosen is not None:
        return chosen
    cands = [(1, w) for w in (warps, warps // 2, warps * 2) if 1 <= w <= 16 and w * 32 <= max(block, 32)]
    if single:
        cands += [(r, w) for r, w in ((2, warps), (4, warps), (2, warps * 2)) if r * block <= 8192 and w <= 16]
    key = (kind, x.dtype, block, single, pow2_bucket(m * x.shape[0]), *kernel_args)
    chosen = _TUNER.choose(key, list(dict.fromkeys(cands)), launch_one, x.device)
    remember(_CHOSEN, exact, chosen, x.device)
    return chosen


def softmax(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    x: torch.Tensor,
    scale: float = 1.0,
    max_row: int | None = None,
    causal: bool = False,
    shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """x (B, nnz) → softmax values (B, nnz). ``max_row``: the longest row (computed when not given);
    ``causal``: entries with column > row count as absent (their output is 0); ``shape``: (rows per
    program, warps) instead of the tuner's choice (rows > 1 only where rows fit one block)."""
    m = row_offsets.numel() - 1
    batch, nnz = x.shape
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    if y.numel() == 0 or m == 0:
        return y
    if max_row is None:
        max_row = int((row_offsets[1:] - row_offsets[:-1]).max())
    block, single, warps = _block(max_row)

    def run(shape: tuple[int, int]) -> None:
        rows, w = shape
        for b0 in range(0, batch, MAX_GRID_YZ):
            nb = min(MAX_GRID_YZ, batch - b0)
            args = (row_offsets, column_indices, row_swizzle, x[b0:] if b0 else x, y[b0:] if b0 else y,
                    x.stride(0), y.stride(0), float(scale), m)
            launch(_softmax_kernel, (cdiv(m, rows), nb, 1), args,
                   {"BLOCK": block, "SINGLE": single, "CAUSAL": causal, "ROWS": rows}, w, 1)

    run(shape if shape is not None and (single or shape[0] == 1) else _shape("fwd", (causal,), run, x, block, single, warps, m))
    return y


def softmax_backward(
    row_offsets: torch.Tensor,
    row_swizzle: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    scale: float = 1.0,
    max_row: int | None = None,
    shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """y, g (B, nnz) → d(values) (B, nnz); ``shape`` as in :func:`softmax`."""
    m = row_offsets.numel() - 1
    batch, nnz = g.shape
    dx = torch.empty(batch, nnz, dtype=g.dtype, device=g.device)
    if dx.numel() == 0 or m == 0:
        return dx
    if max_row is None:
        max_row = int((row_offsets[1:] - row_offsets[:-1]).max())
    block, single, warps = _block(max_row)

    def run(shape: tuple[int, int]) -> None:
        rows, w = shape
        for b0 in range(0, batch, MAX_GRID_YZ):
            nb = min(MAX_GRID_YZ, batch - b0)
            args = (row_offsets, row_swizzle, y[b0:] if b0 else y, g[b0:] if b0 else g, dx[b0:] if b0 else dx,
                    y.stride(0), g.stride(0), dx.stride(0), float(scale), m)
            launch(_softmax_backward_kernel, (cdiv(m, rows), nb, 1), args, {"BLOCK": block, "SINGLE": single, "ROWS": rows}, w, 1)

    run(shape if shape is not None and (single or shape[0] == 1) else _shape("bwd", (), run, g, block, single, warps, m))
    return dx
