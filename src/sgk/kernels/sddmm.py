"""SDDMM kernel: out[e] = dot(X[row(e), :], Y[col(e), :]) at every nonzero e of a CSR pattern.

One program takes one row of the pattern (in row-swizzle order, longest first) and one batch
entry. It walks the row's nonzeros BLOCK_NZ at a time; for each chunk it gathers BLOCK_NZ rows of
Y, BLOCK_D features at a time, multiplies by the row of X and keeps a 2-D fp32 accumulator that is
reduced over the feature axis once per chunk. When one block holds the whole feature dimension
(attention: d <= 256; ``block_d = 0`` asks for it) the row of X is loaded once for the whole row.
Padding entries of the last chunk gather row 0 of Y and are not stored, so the gathers carry no
mask over the nonzeros (and none over features when BLOCK_D divides d). Measured on the H100
(benchmarks/results/variants_2026-11-25_h100.json): 1.2-1.5x faster in bf16 at d = 64-128.
Pointer offsets are int64.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ..checks import flat_batch
from ._common import MAX_GRID_YZ, batch_stride, next_power_of_2
from ._launch import launch
from ._tuning import BucketTuner, exact_cache, pow2_bucket, remember


@triton.jit
def _sddmm_kernel(
    # pointers
    row_offsets_ptr,
    column_indices_ptr,
    row_swizzle_ptr,
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
    BLOCK_NZ: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SINGLE_D: tl.constexpr,  # BLOCK_D >= d: one feature block, X's row loaded once
    EVEN_D: tl.constexpr,  # d % BLOCK_D == 0: no feature mask
):
    pid = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    row = tl.load(row_swizzle_ptr + pid)
    start = tl.load(row_offsets_ptr + row)
    end = tl.load(row_offsets_ptr + row + 1)
    x_row = x_ptr + pid_b * stride_xb + row.to(tl.int64) * stride_xm
    y_base = y_ptr + pid_b * stride_yb
    out_base = out_ptr + pid_b * stride_ob
    offs_d0 = tl.arange(0, BLOCK_D)
    if SINGLE_D:
        if EVEN_D:
            xv = tl.load(x_row + offs_d0.to(tl.int64) * stride_xd)
        else:
            xv = tl.load(x_row + offs_d0.to(tl.int64) * stride_xd, mask=offs_d0 < d, other=0.0)
        xv = xv.to(tl.float32)
    for nz in range(start, end, BLOCK_NZ):
        offs = nz + tl.arange(0, BLOCK_NZ)
        mask = offs < end
        # Padding entries gather row 0 of Y (it exists: the row is not empty); their results are
        # never stored, so the gathers need no mask over the nonzeros.
        cols = tl.load(column_indices_ptr + offs, mask=mask, other=0).to(tl.int64)
        y_rows = y_base + cols[:, None] * stride_yk
        if SINGLE_D:
            ptrs = y_rows + offs_d0.to(tl.int64)[None, :] * stride_yd
            if EVEN_D:
                yt = tl.load(ptrs)
            else:
                yt = tl.load(ptrs, mask=offs_d0[None, :] < d, other=0.0)
            res = tl.sum(yt.to(tl.float32) * xv[None, :], axis=1)
        else:
            acc = tl.zeros([BLOCK_NZ, BLOCK_D], dtype=tl.float32)
            for d0 in range(0, d, BLOCK_D):
                offs_d = d0 + offs_d0
                mask_d = offs_d < d
                ptrs = y_rows + offs_d.to(tl.int64)[None, :] * stride_yd
                if EVEN_D:
                    xv_d = tl.load(x_row + offs_d.to(tl.int64) * stride_xd)
                    yt = tl.load(ptrs)
                else:
                    xv_d = tl.load(x_row + offs_d.to(tl.int64) * stride_xd, mask=mask_d, other=0.0)
                    yt = tl.load(ptrs, mask=mask_d[None, :], other=0.0)
                acc += yt.to(tl.float32) * xv_d.to(tl.float32)[None, :]
            res = tl.sum(acc, axis=1)
        tl.store(out_base + offs, res.to(out_ptr.dtype.element_ty), mask=mask)


@dataclass(frozen=True)
class SddmmConfig:
    """``block_d = 0``: the whole feature dimension in one block (next power of two of d).
    ``kind="dense"``: the full X·Yᵀ on cuBLAS, then a gather at the pattern (the block fields are
    unused)."""

    block_nz: int
    block_d: int
    num_warps: int
    num_stages: int = 1
    kind: str = "gather"


DENSE = SddmmConfig(0, 0, 0, 0, "dense")
DENSE_BYTES_CAP = 256 * 2**20
"""The dense candidate is offered only while the full product (batch × m × k) fits in this many
bytes: at weight-gradient sizes and moderate sparsity a cuBLAS product plus a gather beats every
gather-based SDDMM (the anchors: dense fp32 cuBLAS ran 2.6x faster than Sputnik's SDDMM on the
DLMC Transformer matrices at N = 2048); at attention sizes it would materialise L² scores."""


_ATTN_FP32 = [SddmmConfig(64, 16, 2, 3), SddmmConfig(32, 0, 1, 1), SddmmConfig(16, 0, 1, 1), SddmmConfig(64, 32, 2, 1),
              SddmmConfig(32, 32, 2, 2), SddmmConfig(128, 16, 4, 2)]
_ATTN_HALF = [SddmmConfig(64, 0, 1, 2), SddmmConfig(32, 0, 1, 2), SddmmConfig(64, 32, 1, 1), SddmmConfig(64, 16, 2, 3),
              SddmmConfig(32, 64, 2, 1), SddmmConfig(128, 0, 2, 2)]
_WGRAD_FP32 = [SddmmConfig(32, 128, 4, 1), SddmmConfig(16, 128, 4, 1), SddmmConfig(32, 64, 4, 2), SddmmConfig(64, 64, 8, 1)]
_WGRAD_HALF = [SddmmConfig(32, 64, 4, 1), SddmmConfig(16, 128, 8, 2), SddmmConfig(32, 128, 4, 1), SddmmConfig(64, 64, 8, 1)]


def candidates(d: int, mean_row: float, dtype: torch.dtype = torch.float32, dense: bool = False) -> list[SddmmConfig]:
    """Candidates, the measured heuristic first (H100 sweep,
    benchmarks/results/tuning/sweep_2026-11-25_h100_v1.json, and the whole-row probe,
    benchmarks/results/variants_2026-11-25_h100.json).

    Attention-like reductions (d <= 256) want long nonzero strips and short feature blocks;
    weight-gradient reductions (d = tokens, thousands) want wide feature blocks. ``dense``: the
    full product fits under :data:`DENSE_BYTES_CAP`, so the cuBLAS-then-gather candidate is timed
    too (not yet measured on the H100).
    """
    half = dtype in (torch.float16, torch.bfloat16)
    cands = list(_ATTN_HALF if half else _ATTN_FP32) if d <= 256 else list(_WGRAD_HALF if half else _WGRAD_FP32)
    return cands + [DENSE] if dense else cands


def default_config(d: int, mean_row: float, dtype: torch.dtype = torch.float32) -> SddmmConfig:
    return candidates(d, mean_row, dtype)[0]


_TUNER = BucketTuner("sddmm")
_CHOSEN = exact_cache()  # exact problem -> config: one dict lookup per call after the first
last_config: SddmmConfig | None = None
"""The configuration of the latest launch through :func:`sddmm` (for benchmarks' records)."""


def tuning_key(m: int, d: int, nnz: int, batch: int, dtype: torch.dtype) -> tuple:
    """dtype, d, mean row length and rows×batch, rounded up to powers of two (capped)."""
    return (dtype, min(pow2_bucket(d), 1 << 15), min(pow2_bucket(nnz / max(m, 1)), 4096), min(pow2_bucket(m * batch), 1 << 18))


def sddmm(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    config: SddmmConfig | None = None,
    row_indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launch SDDMM. x (Bx, m, d), y (By, k, d) with Bx, By == 1 or the batch; returns (batch, nnz).
    Unbatched x (m, d) and y (k, d) give (nnz) (no views made). ``row_indices`` (the COO rows)
    enables the dense candidate."""
    m = row_offsets.numel() - 1
    nnz = column_indices.numel()
    d = x.shape[-1]
    if x.dim() == 2 and y.dim() == 2:
        batch = 1
        out = torch.empty(nnz, dtype=x.dtype, device=x.device)
    else:
        batch = flat_batch(x.shape[0], y.shape[0])
        out = torch.empty(batch, nnz, dtype=x.dtype, device=x.device)
    if out.numel() == 0 or m == 0:
        return out
    if d == 0:
        return out.zero_()
    if config is None:
        k = y.shape[-2]
        dense = row_indices is not None and batch * m * k * x.element_size() <= DENSE_BYTES_CAP
        exact = (m, k, d, nnz, batch, x.dtype, x.device, dense)
        config = _CHOSEN.get(exact)
        if config is None:
            def run(cfg):
                _launch(cfg, row_offsets, column_indices, row_swizzle, x, y, out, row_indices)

            key = (*tuning_key(m, d, nnz, batch, x.dtype), dense)
            config = _TUNER.choose(key, candidates(d, nnz / max(m, 1), x.dtype, dense), run, x.device)
            remember(_CHOSEN, exact, config, x.device)
    global last_config
    last_config = config
    _launch(config, row_offsets, column_indices, row_swizzle, x, y, out, row_indices)
    return out


def _launch(cfg: SddmmConfig, row_offsets, column_indices, row_swizzle, x, y, out, row_indices=None) -> None:
    if cfg.kind == "dense":
        if row_indices is None:
            raise ValueError("sddmm(): the dense configuration needs the pattern's row indices")
        # The full product on cuBLAS (fp32 at torch's matmul precision setting), then a gather.
        flat = row_indices.to(torch.int64) * y.shape[-2] + column_indices.to(torch.int64)
        prod = torch.matmul(x, y.transpose(-1, -2))
        out.copy_(prod.reshape(*prod.shape[:-2], -1).index_select(-1, flat))
        return
    m, d = row_offsets.numel() - 1, x.shape[-1]
    batch = out.shape[0] if out.dim() == 2 else 1
    stride_xb = batch_stride(x, 2)
    stride_yb = batch_stride(y, 2)
    block_d = cfg.block_d if cfg.block_d > 0 else next_power_of_2(d)
    constexprs = {"BLOCK_NZ": cfg.block_nz, "BLOCK_D": block_d, "SINGLE_D": block_d >= d, "EVEN_D": d % block_d == 0}
    for b0 in range(0, batch, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, batch - b0)
        args = (
            row_offsets,
            column_indices,
            row_swizzle,
            x[b0:] if stride_xb and b0 else x,
            y[b0:] if stride_yb and b0 else y,
            out[b0:] if b0 else out,
            d,
            stride_xb,
            x.stride(-2),
            x.stride(-1),
            stride_yb,
            y.stride(-2),
            y.stride(-1),
            out.stride(0) if batch > 1 else 0,
        )
        launch(_sddmm_kernel, (m, nb, 1), args, constexprs, cfg.num_warps, cfg.num_stages)
