"""Block-sparse kernels on tensor cores (``tl.dot``): SpMM op(A)·B and SDDMM at a block pattern.

* ``_bsr_spmm_kernel``: one program = one block row of op(A) (in row-swizzle order: block rows
  with the most blocks first) × a BLOCK_N column tile of B. For each kept block it loads the
  bs×bs block of A and the bs×BLOCK_N rows of B it meets and accumulates ``tl.dot`` in fp32.
  op(A) = Aᵀ is read in place: the launcher passes the cached transposed block pattern, the
  permutation from transposed to stored block order, and the block's strides swapped — no copy
  of the values. The output may be written through any strides (dense × sparse writes Cᵀ).
* ``_bsr_sddmm_kernel``: one program = one kept block: the bs×bs block of X·Yᵀ, accumulated over
  the feature dimension BLOCK_D at a time with ``tl.dot(x, yᵀ)``.

fp32 inputs use TF32 tensor cores (``input_precision="tf32"``); fp16/bf16 accumulate in fp32.
Batch is the last program axis; operands that do not vary over the batch have stride 0. Pointer
offsets that can exceed 2**31 are int64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ..checks import flat_batch
from ._common import MAX_GRID_YZ, batch_stride, cdiv, dot_precision, mma, next_power_of_2
from ._launch import launch
from ._tuning import BucketTuner, exact_cache, pow2_bucket, remember


@triton.jit
def _bsr_spmm_kernel(
    # pointers
    row_offsets_ptr,
    column_indices_ptr,
    row_swizzle_ptr,
    block_perm_ptr,
    values_ptr,
    b_ptr,
    c_ptr,
    # sizes
    n,
    # strides
    stride_vb,
    stride_vblk,
    stride_vr,
    stride_vc,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_cb,
    stride_cm,
    stride_cn,
    # meta-parameters
    BS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_PERM: tl.constexpr,  # op(A) = Aᵀ: blocks are read through the transpose permutation
    EVEN_N: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    brow = tl.load(row_swizzle_ptr + pid_m)
    start = tl.load(row_offsets_ptr + brow)
    end = tl.load(row_offsets_ptr + brow + 1)

    offs_r = tl.arange(0, BS)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    v_base = values_ptr + pid_b * stride_vb
    a_offs = offs_r[:, None] * stride_vr + offs_r[None, :] * stride_vc
    b_base = b_ptr + pid_b * stride_bb + offs_n.to(tl.int64)[None, :] * stride_bn

    acc = tl.zeros([BS, BLOCK_N], dtype=tl.float32)
    start64 = start.to(tl.int64)
    for i in range(0, end - start):
        p = start64 + i
        bcol = tl.load(column_indices_ptr + p)
        if HAS_PERM:
            blk = tl.load(block_perm_ptr + p).to(tl.int64)
        else:
            blk = p
        a = tl.load(v_base + blk * stride_vblk + a_offs)
        b_ptrs = b_base + (bcol.to(tl.int64) * BS + offs_r)[:, None] * stride_bk
        if EVEN_N:
            bt = tl.load(b_ptrs)
        else:
            bt = tl.load(b_ptrs, mask=mask_n[None, :], other=0.0)
        acc = mma(a, bt, acc, INPUT_PRECISION)
    c_rows = (brow.to(tl.int64) * BS + offs_r)[:, None] * stride_cm
    c_ptrs = c_ptr + pid_b * stride_cb + c_rows + offs_n.to(tl.int64)[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=mask_n[None, :])


@triton.jit
def _bsr_sddmm_kernel(
    # pointers
    row_indices_ptr,
    column_indices_ptr,
    x_ptr,
    y_ptr,
    out_ptr,
    # sizes
    d,
    # strides
    stride_xb,
    stride_xm,
    stride_xd,
    stride_yb,
    stride_yk,
    stride_yd,
    stride_ob,
    # meta-parameters
    BS: tl.constexpr,
    BLOCK_D: tl.constexpr,
    EVEN_D: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    p = tl.program_id(0).to(tl.int64)
    pid_b = tl.program_id(1).to(tl.int64)
    brow = tl.load(row_indices_ptr + p)
    bcol = tl.load(column_indices_ptr + p)
    offs_r = tl.arange(0, BS)
    offs_d0 = tl.arange(0, BLOCK_D)
    x_rows = x_ptr + pid_b * stride_xb + (brow.to(tl.int64) * BS + offs_r)[:, None] * stride_xm
    y_rows = y_ptr + pid_b * stride_yb + (bcol.to(tl.int64) * BS + offs_r)[:, None] * stride_yk
    acc = tl.zeros([BS, BS], dtype=tl.float32)
    for d0 in range(0, d, BLOCK_D):
        offs_d = (d0 + offs_d0).to(tl.int64)
        if EVEN_D:
            xt = tl.load(x_rows + offs_d[None, :] * stride_xd)
            yt = tl.load(y_rows + offs_d[None, :] * stride_yd)
        else:
            mask_d = (d0 + offs_d0) < d
            xt = tl.load(x_rows + offs_d[None, :] * stride_xd, mask=mask_d[None, :], other=0.0)
            yt = tl.load(y_rows + offs_d[None, :] * stride_yd, mask=mask_d[None, :], other=0.0)
        acc = mma(xt, tl.trans(yt), acc, INPUT_PRECISION)
    out_ptrs = out_ptr + pid_b * stride_ob + p * (BS * BS) + offs_r[:, None] * BS + offs_r[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty))


@dataclass(frozen=True)
class BsrSpmmConfig:
    block_n: int
    num_warps: int
    num_stages: int


@dataclass(frozen=True)
class BsrSddmmConfig:
    block_d: int
    num_warps: int
    num_stages: int


_SMEM_BUDGET = 160 * 1024
"""Bytes of shared memory a candidate's pipeline may plan for (the H100 allows 227 KB a block;
Triton's own buffers and layout padding come on top of this estimate)."""


def _elem(dtype: torch.dtype) -> int:
    return 4 if dtype == torch.float32 else 2


def spmm_candidates(bs: int, n: int, dtype: torch.dtype) -> list[BsrSpmmConfig]:
    """Candidates, a default first (not yet measured on the H100: the tuner times the list).

    Column tiles of 64-256 with 4-8 warps and 2-4 pipeline stages, the usual shapes for a tensor-core
    matmul of bs-row tiles (a 64×256 tile with 8 warps is two warpgroups' worth of wgmma), a narrow
    one when N is small. Candidates whose pipeline (stages × (A block + B tile)) would not fit in
    shared memory are dropped.
    """
    cands = [BsrSpmmConfig(128, 4, 3), BsrSpmmConfig(256, 8, 3), BsrSpmmConfig(64, 4, 4), BsrSpmmConfig(128, 8, 2),
             BsrSpmmConfig(64, 4, 2), BsrSpmmConfig(32, 4, 2)]
    if n <= 64:
        cands = [BsrSpmmConfig(max(16, min(64, next_power_of_2(n))), 4, 3)] + cands
    fits = [c for c in dict.fromkeys(cands) if c.num_stages * (bs * bs + bs * c.block_n) * _elem(dtype) <= _SMEM_BUDGET]
    return fits or [BsrSpmmConfig(32, 4, 1)]


def sddmm_candidates(bs: int, d: int, dtype: torch.dtype) -> list[BsrSddmmConfig]:
    """Candidates, a default first (not yet measured: the tuner times the list); shared-memory
    filtered like :func:`spmm_candidates` (stages × two bs × BLOCK_D tiles)."""
    cands = [BsrSddmmConfig(64, 4, 3), BsrSddmmConfig(32, 4, 3), BsrSddmmConfig(128, 8, 3), BsrSddmmConfig(64, 8, 4),
             BsrSddmmConfig(32, 4, 2)]
    if d <= 32:
        cands = [BsrSddmmConfig(max(16, next_power_of_2(d)), 4, 2)] + cands
    fits = [c for c in dict.fromkeys(cands) if c.num_stages * 2 * bs * c.block_d * _elem(dtype) <= _SMEM_BUDGET]
    return fits or [BsrSddmmConfig(16, 4, 1)]


_SPMM_TUNER = BucketTuner("bsr_spmm")
_SDDMM_TUNER = BucketTuner("bsr_sddmm")
_CHOSEN = exact_cache()
last_config: BsrSpmmConfig | BsrSddmmConfig | None = None
"""The configuration of the latest launch (for benchmarks' records)."""


def spmm(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    block_perm: torch.Tensor | None,
    values: torch.Tensor,
    b: torch.Tensor,
    rows_out: int,
    out_transposed: bool = False,
    config: BsrSpmmConfig | None = None,
) -> torch.Tensor:
    """op(A)·B. values (V, nnzb, bs, bs) are the stored blocks; with ``block_perm`` (the transpose
    permutation) the pattern given is Aᵀ's and blocks are read transposed. b (Bb, k', n).
    Returns (batch, rows_out, n), or (batch, n, rows_out) written through transposed strides when
    ``out_transposed``."""
    batch = flat_batch(values.shape[0], b.shape[0])
    n = b.shape[-1]
    bs = values.shape[-1]
    if out_transposed:
        result = torch.empty(batch, n, rows_out, dtype=b.dtype, device=b.device)
        out = result.transpose(1, 2)
    else:
        result = out = torch.empty(batch, rows_out, n, dtype=b.dtype, device=b.device)
    if out.numel() == 0:
        return result
    if config is None:
        exact = ("spmm", rows_out, n, column_indices.numel(), bs, batch, b.dtype, b.device, block_perm is not None, out_transposed)
        config = _CHOSEN.get(exact)
        if config is None:
            key = (b.dtype, bs, out_transposed, min(pow2_bucket(n), 8192),
                   min(pow2_bucket(column_indices.numel() / max(rows_out // bs, 1)), 1024), min(pow2_bucket(rows_out * batch), 1 << 20))
            run = lambda cfg: _launch_spmm(cfg, row_offsets, column_indices, row_swizzle, block_perm, values, b, out)  # noqa: E731
            config = _SPMM_TUNER.choose(key, spmm_candidates(bs, n, b.dtype), run, b.device)
            remember(_CHOSEN, exact, config, b.device)
    global last_config
    last_config = config
    _launch_spmm(config, row_offsets, column_indices, row_swizzle, block_perm, values, b, out)
    return result


def _launch_spmm(cfg: BsrSpmmConfig, row_offsets, column_indices, row_swizzle, block_perm, values, b, out) -> None:
    batch, m, n = out.shape
    bs = values.shape[-1]
    stride_vb = batch_stride(values, 3)
    stride_bb = batch_stride(b, 2)
    # Aᵀ's block j is the stored block perm[j], transposed: swap the in-block strides.
    stride_vr, stride_vc = (values.stride(3), values.stride(2)) if block_perm is not None else (values.stride(2), values.stride(3))
    grid_n = cdiv(n, cfg.block_n)
    if grid_n > MAX_GRID_YZ:
        raise ValueError(f"bsr_spmm(): n = {n} needs {grid_n} column tiles, more than the {MAX_GRID_YZ} a launch allows")
    constexprs = {"BS": bs, "BLOCK_N": cfg.block_n, "HAS_PERM": block_perm is not None, "EVEN_N": n % cfg.block_n == 0,
                  "INPUT_PRECISION": dot_precision(b, "tf32")}
    for b0 in range(0, batch, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, batch - b0)
        args = (
            row_offsets,
            column_indices,
            row_swizzle,
            block_perm if block_perm is not None else row_offsets,
            values[b0:] if stride_vb and b0 else values,
            b[b0:] if stride_bb and b0 else b,
            out[b0:] if b0 else out,
            n,
            stride_vb,
            values.stride(1),
            stride_vr,
            stride_vc,
            stride_bb,
            b.stride(1),
            b.stride(2),
            out.stride(0),
            out.stride(1),
            out.stride(2),
        )
        launch(_bsr_spmm_kernel, (m // bs, grid_n, nb), args, constexprs, cfg.num_warps, cfg.num_stages)


def sddmm(
    row_indices: torch.Tensor,
    column_indices: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    bs: int,
    config: BsrSddmmConfig | None = None,
) -> torch.Tensor:
    """Blocks of X·Yᵀ at a block pattern (COO block rows and columns): x (Bx, m, d), y (By, k, d)
    → (batch, nnzb, bs, bs)."""
    nnzb = column_indices.numel()
    batch = flat_batch(x.shape[0], y.shape[0])
    d = x.shape[-1]
    out = torch.empty(batch, nnzb, bs, bs, dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    if d == 0:
        return out.zero_()
    if config is None:
        exact = ("sddmm", x.shape[1], d, nnzb, bs, batch, x.dtype, x.device)
        config = _CHOSEN.get(exact)
        if config is None:
            key = (x.dtype, bs, min(pow2_bucket(d), 1 << 15), min(pow2_bucket(nnzb * batch), 1 << 20))
            run = lambda cfg: _launch_sddmm(cfg, row_indices, column_indices, x, y, out)  # noqa: E731
            config = _SDDMM_TUNER.choose(key, sddmm_candidates(bs, d, x.dtype), run, x.device)
            remember(_CHOSEN, exact, config, x.device)
    global last_config
    last_config = config
    _launch_sddmm(config, row_indices, column_indices, x, y, out)
    return out


def _launch_sddmm(cfg: BsrSddmmConfig, row_indices, column_indices, x, y, out) -> None:
    batch, nnzb, bs = out.shape[0], out.shape[1], out.shape[-1]
    d = x.shape[-1]
    stride_xb = batch_stride(x, 2)
    stride_yb = batch_stride(y, 2)
    constexprs = {"BS": bs, "BLOCK_D": cfg.block_d, "EVEN_D": d % cfg.block_d == 0, "INPUT_PRECISION": dot_precision(x, "tf32")}
    for b0 in range(0, batch, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, batch - b0)
        args = (
            row_indices,
            column_indices,
            x[b0:] if stride_xb and b0 else x,
            y[b0:] if stride_yb and b0 else y,
            out[b0:] if b0 else out,
            d,
            stride_xb,
            x.stride(1),
            x.stride(2),
            stride_yb,
            y.stride(1),
            y.stride(2),
            out.stride(0),
        )
        launch(_bsr_sddmm_kernel, (nnzb, nb, 1), args, constexprs, cfg.num_warps, cfg.num_stages)
