"""Sparse softmax over each CSR row's nonzeros, forward and backward.

One program per (row, batch entry), rows in swizzle order. Forward: one pass keeps a running max
and a running sum of exponentials (rescaled when the max grows), a second pass writes
exp(scale·x − max) / sum. A row whose entries are all −inf, or an empty row, writes zeros (never
NaN). Backward: one pass for Σ g·y, one pass writing scale · y · (g − Σ g·y).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import MAX_GRID_YZ, next_power_of_2


@triton.jit
def _softmax_kernel(
    # pointers
    row_offsets_ptr,
    row_swizzle_ptr,
    x_ptr,
    y_ptr,
    # strides
    stride_xb,
    stride_yb,
    # scalars
    scale,
    # meta-parameters
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    row = tl.load(row_swizzle_ptr + pid)
    start = tl.load(row_offsets_ptr + row)
    end = tl.load(row_offsets_ptr + row + 1)
    x_base = x_ptr + pid_b * stride_xb
    y_base = y_ptr + pid_b * stride_yb
    offs0 = tl.arange(0, BLOCK)
    run_max = tl.full([BLOCK], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK], dtype=tl.float32)
    for s in range(start, end, BLOCK):
        offs = s + offs0
        mask = offs < end
        v = tl.load(x_base + offs, mask=mask, other=0.0).to(tl.float32) * scale
        v = tl.where(mask, v, float("-inf"))  # after scaling: a scale <= 0 must not flip padding
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
    # meta-parameters
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    row = tl.load(row_swizzle_ptr + pid)
    start = tl.load(row_offsets_ptr + row)
    end = tl.load(row_offsets_ptr + row + 1)
    y_base = y_ptr + pid_b * stride_yb
    g_base = g_ptr + pid_b * stride_gb
    dx_base = dx_ptr + pid_b * stride_dxb
    offs0 = tl.arange(0, BLOCK)
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


def _block(mean_row: float) -> tuple[int, int]:
    block = max(32, min(1024, next_power_of_2(int(mean_row))))
    return block, (4 if block >= 512 else 2 if block >= 128 else 1)


def softmax(row_offsets: torch.Tensor, row_swizzle: torch.Tensor, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """x (B, nnz) → softmax values (B, nnz)."""
    m = row_offsets.numel() - 1
    batch, nnz = x.shape
    y = torch.empty_like(x, memory_format=torch.contiguous_format)
    if y.numel() == 0 or m == 0:
        return y
    block, warps = _block(nnz / m)
    for b0 in range(0, batch, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, batch - b0)
        _softmax_kernel[(m, nb)](
            row_offsets, row_swizzle, x[b0:], y[b0:], x.stride(0), y.stride(0), float(scale),
            BLOCK=block, num_warps=warps,
        )
    return y


def softmax_backward(
    row_offsets: torch.Tensor, row_swizzle: torch.Tensor, y: torch.Tensor, g: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    """y, g (B, nnz) → d(values) (B, nnz)."""
    m = row_offsets.numel() - 1
    batch, nnz = g.shape
    dx = torch.empty(batch, nnz, dtype=g.dtype, device=g.device)
    if dx.numel() == 0 or m == 0:
        return dx
    block, warps = _block(nnz / m)
    for b0 in range(0, batch, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, batch - b0)
        _softmax_backward_kernel[(m, nb)](
            row_offsets, row_swizzle, y[b0:], g[b0:], dx[b0:], y.stride(0), g.stride(0), dx.stride(0), float(scale),
            BLOCK=block, num_warps=warps,
        )
    return dx
