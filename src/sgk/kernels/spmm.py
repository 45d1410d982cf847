"""SpMM kernels: C = A·B for a CSR matrix A (m×k) and dense B (k×n), batched.

Four kernel families and a two-kernel form share one launcher; the tuner (or the measured
heuristic) picks per problem.
The gather families (tile, 1d, flat) take rows in row-swizzle order (longest first), so the ROWS rows of one program are
consecutive swizzle entries of similar length and the longest rows start first; several short rows
per program is Triton's form of Sputnik's subwarp tiling. All four kernel families accumulate in
fp32 and fuse the epilogue: bias of the row, ReLU, cast to the output dtype.

* ``tile`` (``_spmm_kernel``): the rows' nonzeros are consumed BLOCK_K at a time as vector loads
  of indices and values; their column indices gather a ROWS×BLOCK_K×BLOCK_N tile of B, which is
  scaled by the values and added into an fp32 accumulator of that shape, reduced over the BLOCK_K
  axis once after the loop (no reduction in the inner loop). Wins at tiny N (decode shapes).
* ``1d`` (``_spmm_1d_kernel``): 1-D tiles over N with a ROWS×BLOCK_N accumulator, as Sputnik's
  threads each own a strip of the output row. Nonzeros are consumed one at a time in a loop
  unrolled BLOCK_K deep: each step loads one (index, value) pair per row (the same address across
  the row's threads: one broadcast transaction, as Sputnik's shared-memory reads) and one
  BLOCK_N-wide row of B. The loop is split in two: up to the shortest row of the program no
  load needs a mask over K (the main loop is branch- and predicate-free; with N a multiple of
  BLOCK_N the B loads have no mask at all), then a masked tail up to the longest row. Measured on
  the H100 (benchmarks/results/variants_2026-11-25_h100.json): 1.3x faster than ``tile`` on the
  4096×1024×4096 FFN shape in fp32, 1.2x in fp16, 3.5x at N = 256.

* ``flat`` (``_spmm_flat_kernel``, N <= 64): the tile kernel's ROWS×BLOCK_K nonzero slots on one
  flat axis, so index/value loads, the 16-byte gathers of B's rows and the fp32 accumulator share
  one layout (the 3-D tile converts its index strip through shared memory every step); int32
  offsets unless B's reach needs int64; the next step's index/value loads issued before this
  step's gathers; with ``pack`` 2 or 4 (16-bit indices and values) that many entries to a 32- or
  64-bit load.
  Measured on the H200 (benchmarks/results/2026-12-01_h200_05999e6/): the fastest form at N = 1-16
  (1.5-1.7x cuBLAS bf16 at N = 1, 80%; 62% of DRAM bandwidth) and at 95% for N = 8-64.

* ``bitmap`` (``_spmm_bitmap_kernel``, offered for fp16/bf16 at any N where the topology's
  bitmap exists; fp32, through three TF32 products, only when forced): A is decoded tile by tile (BLOCK_M × BLOCK_K) from ``Topology.bitmap`` — a bit per
  element and the CSR position of each 32-bit word's first entry, so an entry's value is
  ``values[word offset + popc(bits below it)]`` — and multiplied on tensor cores (``tl.dot``
  with a ≥ 16-wide N tile); K is split over programs (fp32 partial sums, added in split order by
  each tile's last program: one launch, reproducible) when the row tiles
  alone would leave SMs idle. The decode costs ~15 instructions a matrix element, whatever the
  sparsity, once per column tile: on the H100 it beats the gather kernels at N = 8-64 and 50-90%
  sparsity, not cuBLAS (docs/performance.md); at N > 64 a 128-256-wide column tile spreads the
  decode over that many columns (H200: 1.2-3.5x faster than the gather kernels at 70-90% and
  N >= 196; benchmarks/results/2026-12-01_h200_533863c/probe_wide.json).

* ``densify`` (fp16/bf16/fp32 inference at N >= 128, a scratch of at most 64 MiB): the bitmap kernel's
  decode, once per call instead of once per column tile, writes A dense into a transient scratch,
  and cuBLAS (``torch.matmul``/``addmm``/``baddbmm``) multiplies over it, the bias added in its
  epilogue (one rounding), ReLU after. cuBLAS accumulates in fp32, but PyTorch lets it reduce
  split-K partial sums in half precision by default
  (``torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction`` and
  ``allow_bf16_reduced_precision_reduction``; set the one for your dtype to False to keep every
  sum in fp32). fp32 (inference at N >= 128, also under deterministic algorithms): the decode
  writes each element split in two TF32 parts, a head and a tail (rounded to nearest: x = head +
  tail to ~2**-22), and ``_densify_x3_kernel`` multiplies in three TF32 tensor-core products
  (tail·head, head·tail, head·head; the tail·tail term, at most 2**-22 of the product, is left
  out, as in the usual 3xTF32 scheme: a few fp32 ulps a product), each of B's
  tiles split in registers more cheaply: its head truncated, its tail left to the MMA, which
  reads the top 19 bits of its operands. It computes Cᵀ = Bᵀ·Aᵀ, so that the split tile of B is
  the MMA's register operand and A's parts come from shared memory straight; fp32 accumulation,
  the bias and ReLU in its epilogue, each K step's three products summed apart and added to the
  total in registers (the tensor cores' accumulation does not round to nearest; carried over the
  whole K loop it gave 1.8e-6 to 1.4e-5 relative error). Measured on the H200
  (benchmarks/results/2026-12-01_h200_b162524/): relative errors 2.1-2.5e-7 (cuBLAS fp32's:
  2.2-3.1e-7 on the same problems); chosen at 50-70% on the DLMC Transformer shapes at N = 2048
  and on the FFN 4096×1024×4096, 2.1-5.1x faster than the gather kernels there and 1.5-1.9x
  faster than cuBLAS fp32 (docs/performance.md, ninth session).

  The densify form multiplies A's zeros too: an inf or NaN in B gives NaN in every row of C
  (0 · inf), where the gather kernels read only the columns of B that A's nonzeros select; in
  fp32 an inf in A's values gives NaN too (its tail is NaN), where the gathers give ±inf. The
  bitmap kernel's dense tiles do the same within each tile.

Batch: program axis 2 walks the (flattened) batch; operands that do not vary over the batch have
batch stride 0. All pointer offsets that can exceed 2**31 are computed in int64.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from ..checks import flat_batch
from ..csr import swizzled_bounds
from ._common import MAX_GRID_YZ, batch_stride, cdiv, dot_precision, mma
from ._launch import launch
from ._tuning import BucketTuner, capturing, exact_cache, pow2_bucket, remember


@triton.jit
def _write_rows(out, c_ptr, bias_ptr, pid_b, stride_biasb, stride_cb, stride_cm, stride_cn, rows, row_ok, offs_n, mask_n,
                HAS_BIAS: tl.constexpr, RELU: tl.constexpr, ATOMIC: tl.constexpr):
    """The epilogue every SpMM kernel shares: C[rows, offs_n] = relu(out + bias[rows]) cast to C's
    dtype, or (``ATOMIC``, a split-K partial sum) ``out`` added atomically into fp32 C, the
    launcher applying bias, ReLU and the cast afterwards."""
    c_ptrs = c_ptr + pid_b * stride_cb + rows.to(tl.int64)[:, None] * stride_cm + offs_n.to(tl.int64)[None, :] * stride_cn
    mask = row_ok[:, None] & mask_n[None, :]
    if ATOMIC:
        tl.atomic_add(c_ptrs, out, mask=mask)
    else:
        if HAS_BIAS:
            out += tl.load(bias_ptr + pid_b * stride_biasb + rows, mask=row_ok, other=0.0).to(tl.float32)[:, None]
        if RELU:
            out = tl.maximum(out, 0.0)
        tl.store(c_ptrs, out.to(c_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _spmm_kernel(
    # pointers
    row_bounds_ptr,  # (2, m): the swizzled rows' first and end offsets, in swizzle order
    column_indices_ptr,
    row_swizzle_ptr,
    values_ptr,
    b_ptr,
    bias_ptr,
    c_ptr,
    # sizes
    m,
    n,
    # strides
    stride_vb,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_biasb,
    stride_cb,
    stride_cm,
    stride_cn,
    # meta-parameters
    ROWS: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    PREFETCH: tl.constexpr = False,  # a step's indices and values loaded one step ahead
):
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)

    # The ROWS rows of this program: consecutive entries of the swizzle, so of similar length.
    slot = pid_r * ROWS + tl.arange(0, ROWS)
    row_ok = slot < m
    rows = tl.load(row_swizzle_ptr + slot, mask=row_ok, other=0)
    starts = tl.load(row_bounds_ptr + slot, mask=row_ok, other=0)  # beside the swizzle, not after it
    ends = tl.load(row_bounds_ptr + m + slot, mask=row_ok, other=0)
    longest = tl.max(ends - starts, axis=0)

    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    b_cols = b_ptr + pid_b * stride_bb + offs_n.to(tl.int64) * stride_bn
    v_base = values_ptr + pid_b * stride_vb
    offs_k = tl.arange(0, BLOCK_K)

    acc = tl.zeros([ROWS, BLOCK_K, BLOCK_N], dtype=tl.float32)
    if PREFETCH:  # the next step's indices and values in flight while this step's rows of B load
        idx = starts[:, None] + offs_k[None, :]
        mask_k = idx < ends[:, None]
        cols = tl.load(column_indices_ptr + idx, mask=mask_k, other=0)
        vals = tl.load(v_base + idx, mask=mask_k, other=0.0)
        for kk in range(0, longest, BLOCK_K):
            next_idx = idx + BLOCK_K
            next_mask = next_idx < ends[:, None]
            next_cols = tl.load(column_indices_ptr + next_idx, mask=next_mask, other=0)
            next_vals = tl.load(v_base + next_idx, mask=next_mask, other=0.0)
            b_tile = tl.load(
                b_cols[None, None, :] + cols.to(tl.int64)[:, :, None] * stride_bk,
                mask=mask_k[:, :, None] & mask_n[None, None, :],
                other=0.0,
            ).to(tl.float32)
            acc += vals.to(tl.float32)[:, :, None] * b_tile
            idx = next_idx
            mask_k = next_mask
            cols = next_cols
            vals = next_vals
    else:
        for kk in range(0, longest, BLOCK_K):
            idx = starts[:, None] + kk + offs_k[None, :]
            mask_k = idx < ends[:, None]
            cols = tl.load(column_indices_ptr + idx, mask=mask_k, other=0)
            vals = tl.load(v_base + idx, mask=mask_k, other=0.0).to(tl.float32)
            b_tile = tl.load(
                b_cols[None, None, :] + cols.to(tl.int64)[:, :, None] * stride_bk,
                mask=mask_k[:, :, None] & mask_n[None, None, :],
                other=0.0,
            ).to(tl.float32)
            acc += vals[:, :, None] * b_tile
    _write_rows(tl.sum(acc, axis=1), c_ptr, bias_ptr, pid_b, stride_biasb, stride_cb, stride_cm, stride_cn,
                rows, row_ok, offs_n, mask_n, HAS_BIAS, RELU, False)


@triton.jit
def _split_program(pid_r, SPLIT_K: tl.constexpr, CHUNK_MAJOR: tl.constexpr):
    """(row tile, chunk) of a split launch's axis-0 program (cdiv(m, ROWS) × SPLIT_K of them): the
    chunk index fastest, or with CHUNK_MAJOR slowest (the programs running at once then read about
    one K slice of B: a row's columns are sorted)."""
    if CHUNK_MAJOR:
        tiles = tl.num_programs(0) // SPLIT_K
        tile = pid_r % tiles
        split = pid_r // tiles
    else:
        tile = pid_r // SPLIT_K
        split = pid_r % SPLIT_K
    return tile, split


@triton.jit
def _b_rows(b_cols, col, stride_bk, mask_n, EVEN_N: tl.constexpr):
    """Rows ``col`` (one per program row) of B at the columns ``b_cols``, as fp32: the 1d kernel's
    unmasked gather (every row has this nonzero)."""
    ptrs = b_cols[None, :] + col.to(tl.int64)[:, None] * stride_bk
    if EVEN_N:
        bt = tl.load(ptrs)
    else:
        bt = tl.load(ptrs, mask=mask_n[None, :], other=0.0)
    return bt.to(tl.float32)


@triton.jit
def _spmm_1d_kernel(
    # pointers
    row_bounds_ptr,  # (2, m): the swizzled rows' first and end offsets, in swizzle order
    column_indices_ptr,
    row_swizzle_ptr,
    values_ptr,
    b_ptr,
    bias_ptr,
    c_ptr,
    # sizes
    m,
    n,
    # strides
    stride_vb,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_biasb,
    stride_cb,
    stride_cm,
    stride_cn,
    # meta-parameters
    ROWS: tl.constexpr,
    BLOCK_K: tl.constexpr,  # unroll depth of the nonzero loop
    BLOCK_N: tl.constexpr,
    EVEN_N: tl.constexpr,  # n % BLOCK_N == 0: no column mask on B
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    SPLIT_K: tl.constexpr = 1,  # > 1: each row's nonzeros in SPLIT_K chunks, atomically added into fp32 C
    CHUNK_MAJOR: tl.constexpr = False,  # the chunk index is the grid's slowest: programs at once read one K slice of B
    PREFETCH: tl.constexpr = False,  # the unmasked loop's indices and values loaded one step ahead
):
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    if SPLIT_K > 1:
        pid_r, split = _split_program(pid_r, SPLIT_K, CHUNK_MAJOR)

    slot = pid_r * ROWS + tl.arange(0, ROWS)
    row_ok = slot < m
    rows = tl.load(row_swizzle_ptr + slot, mask=row_ok, other=0)
    starts = tl.load(row_bounds_ptr + slot, mask=row_ok, other=0)  # beside the swizzle, not after it
    ends = tl.load(row_bounds_ptr + m + slot, mask=row_ok, other=0)
    if SPLIT_K > 1:  # this program's chunk of each row
        chunk = (ends - starts + SPLIT_K - 1) // SPLIT_K
        starts = tl.minimum(starts + split * chunk, ends)
        ends = tl.minimum(starts + chunk, ends)
    lengths = ends - starts
    longest = tl.max(lengths, axis=0)
    # Slots past m (the last program) do not bound the unmasked loop: their loads there read
    # valid entries of another row and their results are never stored.
    shortest = tl.min(tl.where(row_ok, lengths, longest), axis=0)
    full = shortest - shortest % BLOCK_K

    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    b_cols = b_ptr + pid_b * stride_bb + offs_n.to(tl.int64) * stride_bn
    v_base = values_ptr + pid_b * stride_vb

    acc = tl.zeros([ROWS, BLOCK_N], dtype=tl.float32)
    if PREFETCH:  # a step's (ROWS, BLOCK_K) indices and values in flight while the step before runs
        offs_k = tl.arange(0, BLOCK_K)
        idx2 = starts[:, None] + offs_k[None, :]
        step_ok = offs_k[None, :] < full
        cols2 = tl.load(column_indices_ptr + idx2, mask=step_ok, other=0)
        vals2 = tl.load(v_base + idx2, mask=step_ok, other=0.0)
        for kk in range(0, full, BLOCK_K):  # every row has these nonzeros: no mask over K
            next_idx = idx2 + BLOCK_K
            next_ok = (kk + BLOCK_K + offs_k[None, :]) < full
            next_cols = tl.load(column_indices_ptr + next_idx, mask=next_ok, other=0)
            next_vals = tl.load(v_base + next_idx, mask=next_ok, other=0.0)
            for j in tl.static_range(BLOCK_K):
                pick = offs_k[None, :] == j  # column j of the tiles, in registers
                col = tl.sum(tl.where(pick, cols2, 0), axis=1)
                val = tl.sum(tl.where(pick, vals2.to(tl.float32), 0.0), axis=1)
                acc += val[:, None] * _b_rows(b_cols, col, stride_bk, mask_n, EVEN_N)
            idx2 = next_idx
            cols2 = next_cols
            vals2 = next_vals
    else:
        for kk in range(0, full, BLOCK_K):  # every row has these nonzeros: no mask over K
            for j in tl.static_range(BLOCK_K):
                idx = starts + (kk + j)
                col = tl.load(column_indices_ptr + idx)
                val = tl.load(v_base + idx).to(tl.float32)
                acc += val[:, None] * _b_rows(b_cols, col, stride_bk, mask_n, EVEN_N)
    for kk in range(full, longest, BLOCK_K):  # the rows' tails, masked
        for j in tl.static_range(BLOCK_K):
            idx = starts + (kk + j)
            mk = idx < ends
            col = tl.load(column_indices_ptr + idx, mask=mk, other=0)
            val = tl.load(v_base + idx, mask=mk, other=0.0).to(tl.float32)
            bt = tl.load(
                b_cols[None, :] + col.to(tl.int64)[:, None] * stride_bk,
                mask=mk[:, None] & mask_n[None, :],
                other=0.0,
            )
            acc += val[:, None] * bt.to(tl.float32)
    _write_rows(acc, c_ptr, bias_ptr, pid_b, stride_biasb, stride_cb, stride_cm, stride_cn, rows, row_ok, offs_n, mask_n,
                HAS_BIAS, RELU, SPLIT_K > 1)  # split-K: partial sums into the zeroed fp32 C


@triton.jit
def _gather_b(b_base, cols, b_cols, stride_bk, mask, mask_n, WIDE: tl.constexpr, EVEN_N: tl.constexpr):
    """Rows ``cols`` of B (columns ``b_cols``) as fp32, zeros where ``mask`` is false."""
    if WIDE:
        offs = cols.to(tl.int64) * stride_bk
    else:
        offs = cols.to(tl.int32) * stride_bk
    ptrs = b_base + offs[:, None] + b_cols[None, :]
    if EVEN_N:
        bt = tl.load(ptrs, mask=mask[:, None], other=0.0)
    else:
        bt = tl.load(ptrs, mask=mask[:, None] & mask_n[None, :], other=0.0)
    return bt.to(tl.float32)


@triton.jit
def _unpack16(w, q: tl.constexpr, dtype: tl.constexpr):
    """Half-word ``q`` (0 the lowest) of int32 or int64 lanes as fp32, read as ``dtype`` (bf16 or fp16)."""
    if q > 0:
        w = w >> (16 * q)
    h = w.to(tl.int32)  # int64 words: truncated to the low 32 bits
    if dtype == tl.bfloat16:  # a bf16 is the top half of an fp32
        return (h << 16).to(tl.float32, bitcast=True)
    return h.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _index16(w, q: tl.constexpr):
    """Half-word ``q`` of int32 or int64 lanes as a non-negative int32 (a 16-bit column index)."""
    if q > 0:
        w = w >> (16 * q)
    return w.to(tl.int32) & 0xFFFF


@triton.jit
def _spmm_flat_kernel(
    # pointers
    row_bounds_ptr,  # (2, m): the swizzled rows' first and end offsets, in swizzle order
    column_indices_ptr,
    row_swizzle_ptr,
    values_ptr,
    b_ptr,
    bias_ptr,
    c_ptr,
    # sizes
    m,
    n,
    nnz,
    # strides
    stride_vb,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_biasb,
    stride_cb,
    stride_cm,
    stride_cn,
    # meta-parameters
    ROWS: tl.constexpr,
    BLOCK_K: tl.constexpr,  # slots of each row per step: nonzeros, or words of PACK nonzeros
    BLOCK_N: tl.constexpr,
    EVEN_N: tl.constexpr,  # n % BLOCK_N == 0: no column mask on B
    WIDE: tl.constexpr,  # B's element offsets can exceed 2**31: compute them in int64
    PACK: tl.constexpr,  # 1; 2 or 4: int16 indices and 16-bit values read PACK entries to a 32- or 64-bit load
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    SPLIT_K: tl.constexpr = 1,  # > 1: each row's nonzeros in SPLIT_K chunks, atomically added into fp32 C
    CHUNK_MAJOR: tl.constexpr = False,  # the chunk index is the grid's slowest: programs at once read one K slice of B
):
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    if SPLIT_K > 1:
        pid_r, split = _split_program(pid_r, SPLIT_K, CHUNK_MAJOR)

    # The ROWS x BLOCK_K slots of a step as one flat axis: slot f = r * BLOCK_K + j holds entry
    # (PACK > 1: the word of entries) j of row r's step. The index and value loads, the gathers of
    # B's rows and the accumulator then share one layout (no shared-memory conversion in the loop)
    # and each thread gathers whole 16-byte pieces of a row of B. Each slot loads its row's bounds
    # itself (once per program, from L1): a reshape of per-row values would impose its layout.
    f = tl.arange(0, ROWS * BLOCK_K)
    slot = pid_r * ROWS + f // BLOCK_K
    slot_ok = slot < m
    first = tl.load(row_bounds_ptr + slot, mask=slot_ok, other=0)  # beside the swizzle, not after it
    last = tl.load(row_bounds_ptr + m + slot, mask=slot_ok, other=0)
    if SPLIT_K > 1:  # this program's chunk of each row
        chunk = (last - first + SPLIT_K - 1) // SPLIT_K
        first = tl.minimum(first + split * chunk, last)
        last = tl.minimum(first + chunk, last)

    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    b_base = b_ptr + pid_b * stride_bb
    if WIDE:
        b_cols = offs_n.to(tl.int64) * stride_bn
    else:
        b_cols = offs_n * stride_bn
    v_base = values_ptr + pid_b * stride_vb
    acc = tl.zeros([ROWS * BLOCK_K, BLOCK_N], dtype=tl.float32)

    if PACK > 1:
        # Word p holds entries PACK·p ... PACK·p + PACK - 1 (both arrays aligned to a word: the
        # launcher checks). A word is loaded while its first entry is before the row's end and its
        # last inside the array; each entry is then masked by the row's bounds. The entries after
        # the last whole word of the array (nnz % PACK of them) are added once after the loop.
        if PACK == 2:
            idx_words = column_indices_ptr.to(tl.pointer_type(tl.int32))
            val_words = v_base.to(tl.pointer_type(tl.int32))
        else:
            idx_words = column_indices_ptr.to(tl.pointer_type(tl.int64))
            val_words = v_base.to(tl.pointer_type(tl.int64))
        p = first // PACK + f % BLOCK_K
        longest = tl.max((last + PACK - 1) // PACK - first // PACK, axis=0)
        pm = (PACK * p < last) & (PACK * p + PACK <= nnz)
        wi = tl.load(idx_words + p, mask=pm, other=0)
        wv = tl.load(val_words + p, mask=pm, other=0)
        for kk in range(0, longest, BLOCK_K):
            # the next step's words are requested before this step's gathers wait
            np_ = p + BLOCK_K
            npm = (PACK * np_ < last) & (PACK * np_ + PACK <= nnz)
            nwi = tl.load(idx_words + np_, mask=npm, other=0)
            nwv = tl.load(val_words + np_, mask=npm, other=0)
            for q in tl.static_range(PACK):
                e = PACK * p + q
                inq = pm & (e >= first) & (e < last)
                vq = tl.where(inq, _unpack16(wv, q, values_ptr.dtype.element_ty), 0.0)
                acc += vq[:, None] * _gather_b(b_base, _index16(wi, q), b_cols, stride_bk, inq, mask_n, WIDE, EVEN_N)
            p, pm, wi, wv = np_, npm, nwi, nwv
        for t in tl.static_range(PACK - 1):
            # the array's last nnz % PACK entries, each added by the first slot of its row
            e = nnz // PACK * PACK + t
            t_ok = (e < nnz) & (first <= e) & (e < last) & (f % BLOCK_K == 0)
            t_col = tl.load(column_indices_ptr + e + 0 * f, mask=t_ok, other=0)
            t_val = tl.load(v_base + e + 0 * f, mask=t_ok, other=0.0).to(tl.float32)
            acc += t_val[:, None] * _gather_b(b_base, t_col, b_cols, stride_bk, t_ok, mask_n, WIDE, EVEN_N)
    else:
        idx = first + f % BLOCK_K
        longest = tl.max(last - first, axis=0)
        mk = idx < last
        cols = tl.load(column_indices_ptr + idx, mask=mk, other=0)
        vals = tl.load(v_base + idx, mask=mk, other=0.0)
        for kk in range(0, longest, BLOCK_K):
            # the next step's (index, value) pairs are requested before this step's gathers wait
            nidx = idx + BLOCK_K
            nmk = nidx < last
            ncols = tl.load(column_indices_ptr + nidx, mask=nmk, other=0)
            nvals = tl.load(v_base + nidx, mask=nmk, other=0.0)
            acc += vals.to(tl.float32)[:, None] * _gather_b(b_base, cols, b_cols, stride_bk, mk, mask_n, WIDE, EVEN_N)
            idx, mk, cols, vals = nidx, nmk, ncols, nvals
    out = tl.sum(tl.reshape(acc, [ROWS, BLOCK_K, BLOCK_N]), axis=1)
    slot = pid_r * ROWS + tl.arange(0, ROWS)
    row_ok = slot < m
    rows = tl.load(row_swizzle_ptr + slot, mask=row_ok, other=0)
    _write_rows(out, c_ptr, bias_ptr, pid_b, stride_biasb, stride_cb, stride_cm, stride_cn, rows, row_ok, offs_n, mask_n,
                HAS_BIAS, RELU, SPLIT_K > 1)  # split-K: partial sums into the zeroed fp32 C


@triton.jit
def _popc32(x):
    """Population count of int32 lanes: the hardware instruction on the GPU, bit arithmetic under
    the interpreter (which has no libdevice)."""
    u = x.to(tl.uint32, bitcast=True)
    u = u - ((u >> 1) & 0x55555555)
    u = (u & 0x33333333) + ((u >> 2) & 0x33333333)
    u = (u + (u >> 4)) & 0x0F0F0F0F
    return ((u * 0x01010101) >> 24).to(tl.int32)


@triton.jit
def _bitmap_words(bitmap_ptr, word_offsets_ptr, word_rows, row_ok, kt, offs_w, BLOCK_K: tl.constexpr):
    """The bitmap words of tile ``kt`` and the CSR position of each word's first stored entry
    (zeros where ``row_ok`` is false: such a word loads no values)."""
    WORDS: tl.constexpr = BLOCK_K // 32
    widx = word_rows[:, None] + (kt * WORDS + offs_w)[None, :]
    words = tl.load(bitmap_ptr + widx, mask=row_ok[:, None], other=0)
    first = tl.load(word_offsets_ptr + widx, mask=row_ok[:, None], other=0)
    return words, first


@triton.jit
def _bitmap_values(words, first, v_base, lshift, HW_POPC: tl.constexpr, COALESCE: tl.constexpr):
    """The dense (BLOCK_M, WORDS, 32) tile of A that ``words`` and ``first`` encode: each stored
    entry loaded from the CSR values, zeros elsewhere."""
    # Bit s of a word moves to the sign bit: the entry is stored iff the shifted word is negative,
    # and its rank in the word is the count of the bits left in it, less one.
    shifted = words[:, :, None] << lshift[None, None, :]
    if HW_POPC:
        count = libdevice.popc(shifted)
    else:
        count = _popc32(shifted)
    pos = first[:, :, None] + count - 1
    if COALESCE:
        # The hint puts a warp's lanes on one word's 32 bits, so a load touches that row's few
        # consecutive stored entries (a sector or two) rather than 32 rows' (32 sectors, 3 of each 32
        # bytes used: the layout Triton chooses unhinted). It only orders the layout: the loads stay
        # 2-byte ones, since nothing makes the positions' alignment known (tests/sm90_compile.py
        # checks the layout). It costs instructions (a lane's elements need different shifts): a
        # win where many words are dense enough (50%) or the tile is wide (N = 64), measured.
        pos = tl.max_contiguous(pos, [1, 1, 32])
    return tl.load(v_base + pos, mask=shifted < 0, other=0.0)


@triton.jit
def _spmm_bitmap_kernel(
    # pointers
    bitmap_ptr,  # int32 (m, kw): bit s of word w of row r <=> A[r, 32w + s] is stored
    word_offsets_ptr,  # int32 (m, kw): CSR position of the first stored entry of each word
    values_ptr,
    b_ptr,
    bias_ptr,
    c_ptr,
    partials_ptr,  # SPLIT: fp32 (splits, tiles, BLOCK_M, BLOCK_N), each program's partial sum
    arrivals_ptr,  # SPLIT: int32 (tiles,), zero between launches: programs of a tile that have stored
    # sizes
    m,
    n,
    k,
    kw,
    k_tiles,  # BLOCK_K tiles per split
    # strides
    stride_vb,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_biasb,
    stride_cb,
    stride_cm,
    stride_cn,
    # meta-parameters
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
    EVEN_K: tl.constexpr,  # k % BLOCK_K == 0
    EVEN_N: tl.constexpr,  # n % BLOCK_N == 0
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    SPLIT: tl.constexpr,  # K split over program axis 1: the tile's last program to finish sums the partials
    HW_POPC: tl.constexpr,  # the GPU's popc (False under the interpreter)
    COALESCE: tl.constexpr = False,  # value loads laid out along each word's bits (see _bitmap_values)
    INPUT_PRECISION: tl.constexpr = "ieee",  # fp32: "tf32x3" (three TF32 products, fp32-accurate); see _common.mma
    PREFETCH: tl.constexpr = False,  # A's loads one step (values) and two steps (words) ahead, in registers
):
    pid_m = tl.program_id(0)
    pid_1 = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    n_tiles = tl.cdiv(n, BLOCK_N)
    pid_n = pid_1 % n_tiles
    split = pid_1 // n_tiles
    WORDS: tl.constexpr = BLOCK_K // 32

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < m
    word_rows = rows.to(tl.int64) * kw
    offs_w = tl.arange(0, WORDS)
    lshift = 31 - tl.arange(0, 32)
    offs_k = tl.arange(0, BLOCK_K)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    v_base = values_ptr + pid_b * stride_vb
    b_cols = b_ptr + pid_b * stride_bb + offs_n.to(tl.int64)[None, :] * stride_bn

    kt0 = split * k_tiles
    kt1 = tl.minimum(kt0 + k_tiles, tl.cdiv(k, BLOCK_K))
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    if PREFETCH:
        # A software pipeline in registers for A's dependent loads (words, then the values at the
        # positions they give), which Triton's pipeliner leaves in the loop (it pipelines B's
        # cp.async copies only): step kt multiplies the tile loaded during step kt - 1, loads the
        # values of tile kt + 1 from the words loaded during step kt - 1, and the words of kt + 2.
        # Each step then waits on no load of its own; the cost is a second A tile in registers.
        # Past the end the words load masked to zero, so no values are read.
        w_nx, f_nx = _bitmap_words(bitmap_ptr, word_offsets_ptr, word_rows, row_ok, kt0, offs_w, BLOCK_K)
        a_nx = _bitmap_values(w_nx, f_nx, v_base, lshift, HW_POPC, COALESCE)
        w_nx, f_nx = _bitmap_words(bitmap_ptr, word_offsets_ptr, word_rows, row_ok & (kt0 + 1 < kt1), kt0 + 1, offs_w,
                                   BLOCK_K)
    for kt in range(kt0, kt1):
        if PREFETCH:
            a3 = a_nx
            a_nx = _bitmap_values(w_nx, f_nx, v_base, lshift, HW_POPC, COALESCE)
            w_nx, f_nx = _bitmap_words(bitmap_ptr, word_offsets_ptr, word_rows, row_ok & (kt + 2 < kt1), kt + 2, offs_w,
                                       BLOCK_K)
        else:
            w, f = _bitmap_words(bitmap_ptr, word_offsets_ptr, word_rows, row_ok, kt, offs_w, BLOCK_K)
            a3 = _bitmap_values(w, f, v_base, lshift, HW_POPC, COALESCE)
        a = tl.reshape(a3, [BLOCK_M, BLOCK_K])
        kk = kt * BLOCK_K + offs_k
        b_ptrs = b_cols + kk.to(tl.int64)[:, None] * stride_bk
        if EVEN_K and EVEN_N:
            bt = tl.load(b_ptrs)
        else:
            bt = tl.load(b_ptrs, mask=(kk < k)[:, None] & mask_n[None, :], other=0.0)
        acc = mma(a, bt, acc, INPUT_PRECISION)
    if SPLIT:
        # Serial split-K in one launch: each program stores its partial sum, then counts itself in;
        # the tile's last to arrive adds the partials in split order (bitwise reproducible), writes
        # C through the epilogue and resets the count for the next launch. The barrier puts every
        # thread's stores before the release; the acquire (and the barrier Triton puts after the
        # atomic to broadcast its result) puts the other programs' partials before the loads,
        # which bypass L1 (.cg).
        splits = tl.num_programs(1) // n_tiles
        tile = (pid_b * tl.num_programs(0) + pid_m) * n_tiles + pid_n
        tiles = tl.num_programs(0).to(tl.int64) * n_tiles * tl.num_programs(2)
        in_tile = tl.arange(0, BLOCK_M)[:, None] * BLOCK_N + tl.arange(0, BLOCK_N)[None, :]
        p_tile = partials_ptr + tile * (BLOCK_M * BLOCK_N) + in_tile
        p_split = tiles * (BLOCK_M * BLOCK_N)
        tl.store(p_tile + split * p_split, acc)
        tl.debug_barrier()
        arrived = tl.atomic_add(arrivals_ptr + tile, 1, sem="acq_rel", scope="gpu")
        if arrived == splits - 1:
            total = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
            for s in range(0, splits):
                total += tl.load(p_tile + s * p_split, cache_modifier=".cg")
            tl.atomic_xchg(arrivals_ptr + tile, 0, sem="relaxed", scope="gpu")
            _write_rows(total, c_ptr, bias_ptr, pid_b, stride_biasb, stride_cb, stride_cm, stride_cn, rows, row_ok,
                        offs_n, mask_n, HAS_BIAS, RELU, False)
    else:
        _write_rows(acc, c_ptr, bias_ptr, pid_b, stride_biasb, stride_cb, stride_cm, stride_cn, rows, row_ok, offs_n,
                    mask_n, HAS_BIAS, RELU, False)


@triton.jit
def _bitmap_densify_kernel(
    bitmap_ptr,  # int32 (m, kw), as in _spmm_bitmap_kernel
    word_offsets_ptr,  # int32 (m, kw)
    values_ptr,
    out_ptr,  # (batch, m, k): A dense, every element written
    m,
    k,
    kw,
    stride_vb,
    stride_ob,
    stride_om,
    lo_offset,  # SPLIT: the tails' distance from the heads, in elements
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    HW_POPC: tl.constexpr,
    SPLIT: tl.constexpr,
):
    """One BLOCK_M × BLOCK_K tile of A, decoded from the bitmap as the bitmap kernel decodes it,
    stored dense (zeros included) for a dense product; with SPLIT (fp32) as its TF32 heads, and its
    tails lo_offset elements further on (:func:`_tf32_split`)."""
    pid_m = tl.program_id(0)
    kt = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < m
    words, first = _bitmap_words(bitmap_ptr, word_offsets_ptr, rows.to(tl.int64) * kw, row_ok, kt,
                                 tl.arange(0, BLOCK_K // 32), BLOCK_K)
    a = _bitmap_values(words, first, values_ptr + pid_b * stride_vb, 31 - tl.arange(0, 32), HW_POPC, False)
    a = tl.reshape(a, [BLOCK_M, BLOCK_K])
    cols = kt * BLOCK_K + tl.arange(0, BLOCK_K)
    ptrs = out_ptr + pid_b * stride_ob + rows.to(tl.int64)[:, None] * stride_om + cols[None, :]
    mask = row_ok[:, None] & (cols < k)[None, :]
    if SPLIT:
        hi, lo = _tf32_split(a)
        tl.store(ptrs, hi, mask=mask)
        tl.store(ptrs + lo_offset, lo, mask=mask)
    else:
        tl.store(ptrs, a, mask=mask)


@triton.jit
def _tf32_round(x):
    """fp32 ``x`` rounded to TF32 (10 mantissa bits, the low 13 bits zero): to nearest by a carry
    into bit 13 before the mask, except where the carry would overflow, |x| >= 0x7F7FF000 as bits
    (beyond 3.4019e38, inf and NaN): truncated there, so that a NaN stays a NaN (0x7FFFFFFF, the
    NaN the GPU's arithmetic makes, would wrap to zero) and the largest finite values stay finite."""
    bits = x.to(tl.int32, bitcast=True)
    carry = tl.where((bits & 0x7FFFFFFF) >= 0x7F7FF000, 0, 0x1000)
    return ((bits + carry) & -8192).to(tl.float32, bitcast=True)


@triton.jit
def _tf32_split(x):
    """fp32 ``x`` as two TF32 values, a head and a tail (:func:`_tf32_round` each): x = hi + lo to
    within 2**-22 |x| (2**-21 where the head is truncated). A NaN gives NaN parts; an inf an inf
    head and a NaN tail."""
    hi = _tf32_round(x)
    lo = _tf32_round(x - hi)
    return hi, lo


@triton.jit
def _densify_x3_kernel(
    a_ptr,  # fp32 (batch | 1, m, k) A's TF32 heads, contiguous; the tails lo_offset elements further on
    b_ptr,  # fp32 (batch | 1, k, n), any strides
    bias_ptr,  # (batch | 1, m) or unused
    c_ptr,  # (batch, m, n), rows contiguous
    m,
    n,
    k,
    lo_offset,
    stride_ab,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_biasb,
    stride_cb,
    stride_cm,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,  # "tf32" (on the GPU; the operands are TF32 values already)
):
    """The densify form's fp32 product: a BLOCK_M × BLOCK_N tile of C = A·B computed as its
    transpose, Cᵀ = Bᵀ·Aᵀ, in three TF32 products over A's split parts and B's tile split here
    (the register operand of the MMA; A's parts, K-contiguous, are its shared-memory operand)."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_b = tl.program_id(2).to(tl.int64)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < m
    col_ok = cols < n
    offs_k = tl.arange(0, BLOCK_K)
    a_tile = a_ptr + pid_b * stride_ab + rows.to(tl.int64)[None, :] * k  # (1, BLOCK_M): row starts
    b_tile = b_ptr + pid_b * stride_bb + cols.to(tl.int64)[:, None] * stride_bn  # (BLOCK_N, 1)
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in tl.range(0, k, BLOCK_K):
        ks = k0 + offs_k
        k_ok = ks < k
        bt = tl.load(b_tile + ks.to(tl.int64)[None, :] * stride_bk, mask=col_ok[:, None] & k_ok[None, :], other=0.0)
        a_mask = k_ok[:, None] & row_ok[None, :]
        a_hi = tl.load(a_tile + ks[:, None], mask=a_mask, other=0.0)
        a_lo = tl.load(a_tile + lo_offset + ks[:, None], mask=a_mask, other=0.0)
        # B's split, here in the loop, is the cheap one: the head truncated (one mask: a NaN stays a
        # NaN or becomes an inf whose tail is NaN; nothing overflows), the tail x - head exact and
        # left to the MMA, which reads its operands' top 19 bits. Rounding both parts as A's are
        # (:func:`_tf32_split`) cost 11-19% on four shapes for 1.4e-7 instead of 2.1-2.4e-7
        # relative error, cuBLAS fp32's being 2.2-3.1e-7 on the same problems (H200,
        # benchmarks/results/2026-12-01_h200_88bb52c/probe_x3b.json)
        b_hi = (bt.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)
        b_lo = bt - b_hi
        # each step's three products into a fresh sum, added to the total in registers: the tensor
        # cores' own accumulation does not round to nearest, and carried over the whole K loop its
        # error grows with K (1.4e-5 relative at K = 2048 on the H200, against 4e-7 for cuBLAS fp32)
        part = mma(b_lo, a_hi, tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32), INPUT_PRECISION)  # small terms first
        part = mma(b_hi, a_lo, part, INPUT_PRECISION)
        acc += mma(b_hi, a_hi, part, INPUT_PRECISION)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + pid_b * stride_biasb + rows, mask=row_ok, other=0.0).to(tl.float32)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    ptrs = c_ptr + pid_b * stride_cb + rows.to(tl.int64)[None, :] * stride_cm + cols[:, None]
    tl.store(ptrs, acc.to(c_ptr.dtype.element_ty), mask=row_ok[None, :] & col_ok[:, None])


@dataclass(frozen=True)
class SpmmConfig:
    """One launch configuration. ``kind`` picks the kernel family ("tile", "1d", "flat", "bitmap" or
    "densify"; for "bitmap", ``rows``/``block_k``/``block_n`` are the BLOCK_M × BLOCK_K tile of A and
    the N tile, and ``split_k`` 0 lets the launcher choose the K split; for "densify", ``rows`` ×
    ``block_k`` is the tile the decode kernel writes, and the product is a dense one); for "1d",
    ``block_k`` is the unroll depth of the nonzero loop and ``split_k`` > 1 splits each row's
    nonzeros over that many programs (partial sums added atomically in fp32: not bitwise
    reproducible, so never chosen under ``torch.use_deterministic_algorithms``), for "flat" too;
    with ``chunk_major`` the chunk index varies slowest over the grid, so the programs running at
    once all read about one K/split_k slice of B (columns are sorted within a row), a slice that
    can stay in each SM's L1 at decode widths; by default it varies fastest. (Forced only: measured
    on the H200 it was within 2% of the default order and never faster than no split,
    ``benchmarks/results/2026-12-01_h200_b4063b1/probe_chunk.json``; the tuner does not offer it.)"""

    rows: int
    block_k: int
    block_n: int
    num_warps: int
    num_stages: int = 1
    kind: str = "tile"
    split_k: int = 1
    compact: bool = False  # read 16-bit column indices (k <= 32767): 4 instead of 6 bytes a bf16 nonzero
    pack: int = 1  # "flat" with 16-bit indices and values: 2 or 4 entries to a 32- or 64-bit load (block_k counts words)
    coalesce: bool = False  # "bitmap": value loads laid out along each bitmap word's bits
    prefetch: bool = False  # "bitmap": A's dependent loads issued one and two steps ahead (in registers); "tile"/"1d": the next step's indices and values loaded one step ahead ("flat" always does)
    chunk_major: bool = False  # "1d"/"flat" with split_k > 1: chunk index slowest over the grid (one K slice of B at once)


GATHER_PREFETCH = True
"""The tile candidates load each step's column indices and values one step ahead
(``SpmmConfig.prefetch``), so that a step waits for one dependent load (B's rows) instead of two.
Measured on the H200 against the same configurations without it (CUDA-graph replays,
``benchmarks/results/2026-12-02_h200_0343c06/pfab.json``): tile 0.89-0.94x the time in fp32,
0.97-0.99x in bf16; the 1d kernel's form (the next step's (ROWS, BLOCK_K) tiles, each nonzero
picked out in registers) was 0.99-1.12x, so its candidates keep the plain loop (the form stays
available to a forced configuration)."""


def _t(rows, block_k, block_n, warps, stages=1):
    return SpmmConfig(rows, block_k, block_n, warps, stages, "tile", prefetch=GATHER_PREFETCH)


def _d(rows, block_k, block_n, warps, stages=1):
    return SpmmConfig(rows, block_k, block_n, warps, stages, "1d")


def _s(rows, block_k, block_n, warps, stages, split_k):
    return SpmmConfig(rows, block_k, block_n, warps, stages, "1d", split_k)


# Candidate lists by regime, the heuristic default first. Sources: the 48-configuration sweep of the
# tile kernel (benchmarks/results/tuning/sweep_2026-11-25_h100_v1.json) and the 36-configuration
# probe of the 1d kernel against it (benchmarks/results/variants_2026-11-25_h100.json).
_LARGE_N_FP32 = [_t(8, 8, 32, 2, 3), _d(1, 4, 256, 1), _d(1, 8, 256, 1), _d(4, 8, 32, 1), _d(4, 4, 128, 2),
                 _t(4, 8, 32, 1, 3), _t(8, 4, 64, 4, 2), _d(1, 4, 256, 2, 2)]
_LARGE_N_HALF = [_d(4, 4, 128, 2), _d(4, 4, 256, 4), _d(1, 8, 256, 1), _t(4, 4, 256, 2, 1), _t(2, 16, 64, 1, 1),
                 _t(4, 4, 128, 1, 3), _d(2, 4, 256, 2, 2), _d(4, 8, 128, 2)]
_SMALL_N_FP32 = [_d(1, 8, 64, 1), _d(2, 8, 64, 1), _d(1, 4, 128, 1), _t(8, 32, 32, 8, 2), _t(4, 32, 32, 4, 2),
                 _t(1, 32, 64, 1, 3), _d(1, 8, 32, 1)]
_SMALL_N_HALF = [_d(1, 8, 64, 1), _t(4, 32, 32, 4, 2), _t(1, 4, 128, 8, 1), _d(2, 8, 64, 1), _d(1, 4, 128, 1),
                 _t(2, 32, 32, 8, 2), _d(1, 8, 32, 1)]
_TINY_N = [_t(4, 32, 16, 4, 1), _t(8, 16, 16, 4, 1), _t(2, 32, 16, 2, 1), _t(4, 64, 16, 4, 1), _t(16, 16, 16, 8, 1),
           _d(4, 8, 16, 1), _d(8, 8, 16, 1), _t(4, 32, 16, 4, 3), _t(8, 64, 16, 8, 2)]
# Split-K: for few, long rows — the ResNet-50 layers at batch-1 widths (m = 512-2048 rows of 400-900
# nonzeros at N = 49-196) and decode shapes leave most of the 132 SMs idle otherwise. The tuner keeps
# one in 11 of the 208 DLMC cases in fp32 and 12 in bf16 on the H200, rn50 at N = 49-784 and two
# Transformer ones at N = 256 (benchmarks/results/2026-12-01_h200_5c6ad2b/, 32dee42/).
_SPLIT_SMALL_N = [_s(1, 8, 64, 1, 1, 4), _s(2, 8, 64, 1, 1, 8), _s(1, 8, 32, 1, 1, 8)]
_SPLIT_TINY_N = [_s(4, 8, 16, 1, 1, 4), _s(8, 8, 16, 2, 1, 8)]
# Split-K at large N, offered only for skewed rows (the longest row >= SKEW_SPLIT × the mean). On the H200 the DLMC Transformer cases at N = 2048 that lose most to Sputnik
# (0.53-0.61x) are magnitude-pruned attention weights whose longest row is 10-25x the mean
# (e.g. 254 against 10): the 1-warp program of that row runs ~64 dependent steps while the rest of
# the grid has finished (the same shape with a longest row of 24-28 takes 10.5 µs, against 32.5).
# Splitting every row shortens that critical path by split_k, for the atomics and a zeroed C. Kept by
# the tuner in 12 of those cases, 1.19-1.27x faster (benchmarks/results/2026-12-01_h200_d32cbe4/).
SKEW_SPLIT = 4
_SPLIT_LARGE_N = [_s(1, 4, 256, 1, 1, 4), _s(1, 4, 256, 1, 1, 8), _s(2, 4, 128, 2, 1, 4)]
# 16-bit indices where the weights' bytes are the cost: N <= 64 (the flat kernel's compact forms
# serve 41 of the 75 H200 decode cases, benchmarks/results/2026-12-01_h200_d9590e1/decode_bf16.json).
_COMPACT_TINY_N = [dataclasses.replace(c, compact=True) for c in (_TINY_N[0], _TINY_N[7], _SPLIT_TINY_N[0])]
_COMPACT_SMALL_N = [dataclasses.replace(c, compact=True) for c in (_SMALL_N_HALF[0], _SMALL_N_HALF[1], _SPLIT_SMALL_N[0])]


def _f(rows, block_k, block_n, warps, split_k=1, compact=True, pack=1):
    return SpmmConfig(rows, block_k, block_n, warps, 1, "flat", split_k, compact, pack)


def _b(block_m, block_k, block_n, warps, stages, split_k=0, coalesce=False, prefetch=False):
    return SpmmConfig(block_m, block_k, block_n, warps, stages, "bitmap", split_k, coalesce=coalesce, prefetch=prefetch)


def bitmap_candidates(n: int, dtype: torch.dtype = torch.bfloat16) -> list[SpmmConfig]:
    """Bitmap (dense-tile, tensor-core) configurations: BLOCK_M rows × BLOCK_K columns of A decoded
    per step, N padded to a 16-wide tile at least, K split to fill the SMs (``split_k`` 0: chosen
    by the launcher).

    fp16/bf16 at N <= 64 (decode), ranked by the H100 probe
    (benchmarks/results/2026-11-25_h100_ca4b716/probe_tc.json: geomean time over the best per case,
    45 decode cases): 64×128, 4 warps, 3 stages within 3% of the best at N < 64; 64×256 at N = 64.
    With the value loads along the words' bits (``coalesce``), H200 probe
    (benchmarks/results/2026-12-01_h200_4b47793/probe_decode.json): 64×128 and 64×256 faster at
    N = 64 (by 10-45%) and at 50% sparsity; slower by 10-20% at N = 8-32 and 80-95%.

    N > 64 (training and prefill widths): the decode of a tile is paid once per column tile, so
    128-256-wide column tiles amortise it; the tensor cores then do the dense work of the tile.
    H200 probe (benchmarks/results/2026-12-01_h200_533863c/probe_wide.json, 11 configurations on
    8 DLMC-sized shapes at 70/90/98%): 64×128×128 with 4 warps the best or within 10% on most;
    128×128×128 (8 warps) on the larger ones; 64×64×128 with 4 stages at N = 196-3136; the K
    split the launcher picks slower than none in half the cases, so unsplit forms are offered too. With A's loads prefetched in
    registers (``prefetch``; benchmarks/results/2026-12-01_h200_12e5ef9/probe_prefetch.json, graph
    replay): 1.04-1.20x faster on every wide shape probed, 64×128×256 with 8 warps the best on the
    larger ones (2048×512×2048 at 70%: 33.0 → 27.5 µs; 4096×1024×4096 at 90%: 159 → 140 µs); at
    N <= 64 it was 4-24% slower than the best plain loop (a second A tile in registers: fewer
    programs an SM where the loads were already spread over many), so it is offered at N > 64 only.
    ncu on 512×512×2048 (d59c1c7/ncu_wide.txt): one 4-warp program an SM (6% occupancy), no warp
    eligible in 71-81% of cycles, 12-13.6 µs against cuBLAS's 5.9; of the grid tried next
    (cc9bdb5/probe_prefetch_grid.json: 8 warps, 2 stages, forced splits, 256-deep steps), 64×256×128
    with 8 warps and 2 stages was the best on the 512-row shapes (512×512×2048: 14.8 → 13.3 µs), and
    the 128×128×128 and unsplit plain 64×128×128 forms never were, so they are no longer offered.

    fp32 (any N, ``method="bitmap"`` only) multiplies in three TF32 products
    (``tl.dot(input_precision="tf32x3")``: each operand split into a TF32 head and a TF32 tail,
    the tail × tail product dropped, about 2**-21 relative per product), with 32-64-wide K steps.
    On the H200 it was 1.5-5x slower than the gather kernels on every probed shape (the same
    probe), so the automatic choice does not offer it."""
    if dtype == torch.float32:
        bn = min(128, max(16, 1 << max(0, (n - 1).bit_length())))
        cands = [_b(64, 32, bn, 4, 3), _b(64, 64, bn, 4, 3), _b(128, 32, bn, 8, 3)]
        return cands + ([_b(64, 32, 256, 8, 3)] if n > 128 else [])
    bn = max(16, 1 << max(0, (n - 1).bit_length()))
    if n > 64:
        return [_b(64, 128, 128, 4, 3, 1, prefetch=True), _b(64, 128, 256, 8, 3, prefetch=True), _b(64, 256, 128, 8, 2, 1),
                _b(64, 128, 128, 4, 3), _b(64, 64, 128, 4, 4, prefetch=True), _b(64, 64, 128, 4, 4),
                _b(64, 128, 128, 4, 3, coalesce=True)]
    if n > 32:
        return [_b(64, 128, bn, 4, 3, coalesce=True), _b(64, 256, bn, 4, 3, coalesce=True), _b(64, 256, bn, 4, 3),
                _b(64, 256, bn, 8, 3, 1)]
    return [_b(64, 128, bn, 4, 3), _b(64, 128, bn, 4, 4), _b(64, 64, bn, 4, 4, coalesce=True),
            _b(64, 128, bn, 4, 3, coalesce=True), _b(128, 128, bn, 8, 3)]


def _flat(n: int, compact: bool, packed: bool = False) -> list[SpmmConfig]:
    """Flat-tile configurations for N <= 64 (decode shapes): the column tile is N rounded up to a
    power of two, so one program covers every column; 16-bit indices where they exist, and with
    ``packed`` (16-bit values too) the same steps read two or four entries to a 32- or 64-bit load."""
    bn = 1 << max(0, (n - 1).bit_length())
    key = max(bn, 8) if bn > 1 else 1
    # The winners of the H200 decode probe (benchmarks/results/2026-12-01_h200_a9ab572/probe_decode.json).
    shapes = {1: [(4, 128, 4), (2, 256, 2), (8, 64, 2)], 8: [(2, 64, 1), (4, 128, 4)], 16: [(4, 32, 1), (2, 64, 1)],
              32: [(1, 32, 1), (4, 16, 4), (2, 16, 1)], 64: [(2, 16, 4), (1, 16, 1)]}[key]
    cands = [_f(r, k, bn, w, compact=compact) for r, k, w in shapes]
    if packed and compact:
        # N = 1 from the SpMV probe (benchmarks/results/2026-12-01_h200_4604663/probe_spmv.json); elsewhere
        # the flat winners with half (a quarter) as many word slots a step.
        pair_shapes = [(4, 64, 4), (4, 128, 4), (8, 32, 2)] if key == 1 else [(r, k // 2, w) for r, k, w in shapes]
        quads = [_f(r, max(1, k // 2), bn, w, pack=4) for r, k, w in pair_shapes]
        cands = [_f(r, k, bn, w, pack=2) for r, k, w in pair_shapes] + quads + cands
    return cands


def _narrow(n: int) -> list[SpmmConfig]:
    """Tile configurations whose column tile is N rounded up to a power of two (N < 16)."""
    nb = 1 << max(0, (n - 1).bit_length())
    bk = min(256, max(32, 512 // nb))
    return [_t(4, bk, nb, 4, 2), _t(8, bk // 2, nb, 4, 2), _t(2, 2 * bk, nb, 4, 3)]


def skew_bucket(m: int, nnz: int, max_row: int) -> int:
    """The longest row over the mean row length, rounded up to a power of two and capped at 64; 0
    when the longest row is not known (``max_row`` < 0: the ops layer does not synchronise to find
    it inside a trace or a CUDA-graph capture)."""
    if max_row < 0 or nnz <= 0:
        return 0
    return min(pow2_bucket(max_row * m / nnz), 64)


def candidates(m: int, n: int, nnz: int, dtype: torch.dtype = torch.float32, compact: bool = False,
               skew: int = 0) -> list[SpmmConfig]:
    """Candidate configurations by N regime and dtype, the measured heuristic first.

    Tile sweep: small tiles over K with several swizzled rows per program won at large N, long
    BLOCK_K strips at small N. 1d probe: 1d tiles won at large N in fp16/bf16, on the FFN shape in
    fp32, and at N = 196-256 in every dtype; the tile kernel kept N <= 16 and the 2048×512, N =
    2048 Transformer shape in fp32. The tuner times the list once per bucketed key.

    Below N = 16 (decode: N = 1-8) the tile kernel's column tile narrows to N, and its BLOCK_K
    grows to keep the threads busy (a 16-wide tile at N = 1 would idle 15/16 of it); at N <= 64 the
    flat kernel (:func:`_flat`) usually wins there.
    ``compact``: 16-bit column indices exist (k <= 32767), and configurations reading them are
    offered at N <= 64. ``skew`` (:func:`skew_bucket`): at N >= 1024, split-K configurations are
    offered too once the longest row is SKEW_SPLIT times the mean or more.
    """
    half = dtype in (torch.float16, torch.bfloat16)
    split = not torch.are_deterministic_algorithms_enabled()
    if n < 16:
        narrow = _narrow(n)
        cands = narrow + list(_TINY_N) + list(_SPLIT_TINY_N)
        cands += [dataclasses.replace(c, compact=True) for c in narrow[:2]] + list(_COMPACT_TINY_N) if compact else []
    elif n == 16:
        cands = list(_TINY_N) + list(_SPLIT_TINY_N) + (list(_COMPACT_TINY_N) if compact else [])
    elif n < 1024:
        cands = list(_SMALL_N_HALF if half else _SMALL_N_FP32) + list(_SPLIT_SMALL_N)
        cands += list(_COMPACT_SMALL_N) if compact and n <= 64 else []
    else:
        cands = list(_LARGE_N_HALF if half else _LARGE_N_FP32)
        if skew >= SKEW_SPLIT:
            cands += _SPLIT_LARGE_N
    if n <= 64:
        cands += _flat(n, compact, packed=half)
    return [c for c in dict.fromkeys(cands) if split or c.split_k == 1]


def default_config(m: int, n: int, nnz: int, dtype: torch.dtype = torch.float32) -> SpmmConfig:
    """The measured heuristic: the first candidate."""
    return candidates(m, n, nnz, dtype)[0]


_TUNER = BucketTuner("spmm")
_CHOSEN = exact_cache()  # exact problem -> config: one dict lookup per call after the first
last_config: SpmmConfig | None = None
"""The configuration of the latest launch through :func:`spmm` (for benchmarks' records)."""


def tuning_key(m: int, n: int, nnz: int, batch: int, dtype: torch.dtype, skew: int = 0) -> tuple:
    """Bucketed autotune key: dtype, N, mean row length and rows×batch, each rounded up to a power
    of two (capped), so a changing nnz or N does not re-tune every step; and the row-length skew
    (:func:`skew_bucket`): DLMC weights of one shape and sparsity share N, nnz and the mean, but
    the longest row, which bounds a gather kernel's time, ranges from 2x to 25x the mean. The row
    length is capped at 2**16, not lower: decode weights have rows of 400-7000 entries, and their best kernel
    changes with it (at N = 8 on the H200, the bitmap kernel at 50% sparsity, the flat one at 80%:
    a cap of 1024 made the 50% case's choice serve 80% too, 15-25% slower there)."""
    return (
        dtype,
        torch.are_deterministic_algorithms_enabled(),  # split-K candidates only when nondeterminism is allowed
        min(pow2_bucket(n), 8192),
        min(pow2_bucket(nnz / max(m, 1)), 1 << 16),
        min(pow2_bucket(m * batch), 1 << 16),
        skew,
    )


def spmm(
    row_offsets: torch.Tensor,
    column_indices: torch.Tensor,
    row_swizzle: torch.Tensor,
    values: torch.Tensor,
    b: torch.Tensor,
    bias: torch.Tensor | None = None,
    relu: bool = False,
    out_dtype: torch.dtype | None = None,
    config: SpmmConfig | None = None,
    column_indices16: torch.Tensor | None = None,
    bitmap: tuple[torch.Tensor, torch.Tensor] | None = None,
    bitmap_only: bool = False,
    record: list | None = None,
    max_row: int = -1,
    row_bounds: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launch SpMM. Shapes (already validated and flattened by sgk.ops):

    values (V, nnz) with V == 1 or the batch; b (Bb, k, n) with Bb == 1 or the batch;
    bias (Vb, m) or None; returns C (batch, m, n) of ``out_dtype`` (default b.dtype). Unbatched
    operands — values (nnz), b (k, n), bias (m) or None — give C (m, n) (no views made: each costs
    about a microsecond of host time). ``column_indices16``: the same indices as int16
    (k <= 32767), for the compact configurations. ``bitmap``: the topology's (bitmap, word
    offsets) (:attr:`sgk.Topology.bitmap`): the bitmap configurations are offered too (the caller
    decides where they may pay: :func:`sgk.ops.spmm`); ``bitmap_only``: choose among those alone
    (``sgk.spmm(..., method="bitmap")``). ``record``: a list that gets the configuration launched,
    then the launch's
    :class:`~sgk.kernels._launch.Prepared` record (into C, or into the split-K accumulator; None
    where the direct launch cannot serve the kernel; for a densify launch, its decode's (None too
    where an fp32 product has none), then (the scratch's shape, the fp32 product's record or None);
    nothing for a bias, a split-K launch with ReLU, a batch that takes more
    than one launch, or a densify launch with ReLU, batched values or another output dtype), and for
    a split bitmap launch the sizes (partial sums, tiles) its stream's buffers must have; it stays
    empty for an empty C. For :class:`SpmmPlan` (unbatched, no bias, no ReLU). ``max_row``: the longest row's
    length (-1: unknown), for the tuner's key and candidates (:func:`skew_bucket`). ``row_bounds``:
    the topology's :attr:`~sgk.Topology.row_bounds` (the gather kernels read the rows' offsets in
    swizzle order, beside the swizzle instead of after it); made here when None (three small
    device operations a call: pass it where calls repeat).
    """
    m = row_offsets.numel() - 1
    nnz = column_indices.numel()
    n = b.shape[-1]
    if b.dim() == 2 and values.dim() == 1 and (bias is None or bias.dim() == 1):
        batch = 1
        c = torch.empty(m, n, dtype=out_dtype or b.dtype, device=b.device)
    else:
        batch = flat_batch(values.shape[0], b.shape[0], bias.shape[0] if bias is not None else 1)
        c = torch.empty(batch, m, n, dtype=out_dtype or b.dtype, device=b.device)
    if c.numel() == 0:
        return c
    if row_bounds is None:
        row_bounds = swizzled_bounds(row_offsets, row_swizzle)
    elif (row_bounds.shape != (2, m) or not row_bounds.is_contiguous() or row_bounds.dtype != row_offsets.dtype
          or row_bounds.device != row_offsets.device):
        raise ValueError(f"spmm(): row_bounds must be a contiguous (2, {m}) tensor of row_offsets' dtype on its device "
                         f"(Topology.row_bounds), got {tuple(row_bounds.shape)} {row_bounds.dtype} on {row_bounds.device}"
                         f"{'' if row_bounds.is_contiguous() else ', not contiguous'}")
    if config is None:
        compact = column_indices16 is not None
        # fp32's three-TF32 bitmap form only when forced: slower than the gathers wherever probed
        dense_tiles = bitmap is not None and (bitmap_only or b.dtype in (torch.float16, torch.bfloat16))
        if bitmap_only and not dense_tiles:
            raise ValueError("spmm(): the bitmap path needs the topology's bitmap")
        skew = skew_bucket(m, nnz, max_row)
        deterministic = torch.are_deterministic_algorithms_enabled()
        # the densify form: not with method="bitmap" (the dense-tile kernel only), nor another output
        # dtype, nor for fp16/bf16 under deterministic algorithms (cuBLAS is deterministic only under
        # a workspace setting; fp32's own product is); its scratch limit depends on the values'
        # batch, which `batch` alone does not tell: in both keys, and its dense product's cost on k
        densify = (bitmap is not None and not bitmap_only and c.dtype == b.dtype
                   and (not deterministic or b.dtype == torch.float32)
                   and densify_allowed(m, b.shape[-2], n, values.shape[0] if values.dim() == 2 else 1, b.dtype))
        exact = (m, n, nnz, batch, b.dtype, b.device, deterministic, compact, dense_tiles,
                 bitmap_only, b.shape[-2] if dense_tiles or densify else None, skew, densify)
        config = _CHOSEN.get(exact)
        if config is None:
            def run(cfg):
                _launch(cfg, row_bounds, column_indices, row_swizzle, values, b, bias, relu, c, column_indices16, bitmap)

            k = b.shape[-2]
            key = (*tuning_key(m, n, nnz, batch, b.dtype, skew), compact,
                   (dense_tiles or densify) and min(pow2_bucket(k), 1 << 16), bitmap_only, densify)
            if bitmap_only:
                cands = bitmap_candidates(n, b.dtype)
            else:
                cands = candidates(m, n, nnz, b.dtype, compact, skew) + (bitmap_candidates(n, b.dtype) if dense_tiles else [])
            if densify:
                cands = cands + [DENSIFY]
            config = _TUNER.choose(key, cands, run, b.device)
            remember(_CHOSEN, exact, config, b.device)
    global last_config
    last_config = config
    _launch(config, row_bounds, column_indices, row_swizzle, values, b, bias, relu, c, column_indices16, bitmap, record)
    if record is not None:
        record.insert(0, config)  # then the launch's record, if it made one
    return c


class SpmmPlan:
    """Repeated unbatched inference calls C = A·B (no bias, no ReLU) over one topology's arrays with
    one operand layout (an op-level plan, ``sgk.spmm``'s cache per layout): the first call goes
    through :func:`spmm` and records its launch; later calls allocate C and repeat that launch with
    only the operands' addresses new (no key, no configuration lookup, no argument walk: on the
    dev CPU 16-31 → ~6 µs of host time a call with the launch stubbed). A split-K configuration
    is repeated as the full path runs it: a zeroed fp32 accumulator (C itself for fp32), the
    atomic launch, the cast; a split bitmap launch is repeated with the current stream's partial-sum
    and arrival buffers (:func:`_split_buffers`, as the full path takes them: the record holds
    their sizes); a densify choice as its decode's recorded launch into a fresh scratch of the
    recorded shape, then the dense product (``torch.mm``, or for fp32 the split product's recorded
    launch). Every call whose record does not apply
    takes :func:`spmm` again, and records anew: a changed deterministic-algorithms setting,
    an operand of another alignment, or a launch path or tuner setting changed since
    (:func:`~sgk.kernels._launch.invalidate_prepared`). The caller guarantees the layout: values
    (nnz) and b (k, n) of the recorded shapes, strides, dtype and device."""

    __slots__ = ("_tables", "_state")

    def __init__(self, row_offsets, column_indices, row_swizzle, column_indices16=None, bitmap=None, max_row: int = -1,
                 row_bounds=None):
        if row_bounds is None and row_offsets is not None:  # held here: the record keeps only its address
            row_bounds = swizzled_bounds(row_offsets, row_swizzle)
        self._tables = (row_offsets, column_indices, row_swizzle, column_indices16, bitmap, max_row, row_bounds)
        # (record, deterministic setting, (C's shape, dtype, device), config, split bitmap buffer
        # sizes, or a densify form's (scratch shape, fp32 product record or None), or None) or None;
        # one tuple, replaced whole, so that
        # concurrent callers never see parts of two records
        self._state = None

    def __call__(self, values: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        global last_config
        state = self._state
        if state is not None:
            rec, deterministic, (shape, dtype, device), config, sizes = state
            if deterministic == torch.are_deterministic_algorithms_enabled():
                if config.kind == "densify":  # the decode into a fresh scratch, then the dense product
                    scratch, product = sizes
                    dense = torch.empty(scratch, dtype=dtype, device=device)
                    if rec.run((values, dense)):
                        if product is None:
                            last_config = config
                            return torch.mm(dense, b)  # (no out=: one allocation less, and no autograd error)
                        c = torch.empty(shape, dtype=dtype, device=device)
                        if product.run((dense, b, c, c)):  # fp32: the split product, C in the bias and C slots
                            last_config = config
                            return c
                elif sizes is not None:  # a split bitmap launch: C in the bias and C slots, then this stream's buffers
                    c = torch.empty(shape, dtype=dtype, device=device)
                    if rec.run((values, b, c, c) + _split_buffers(device, *sizes)):
                        last_config = config
                        return c
                elif config.split_k > 1 and config.kind != "bitmap":  # (a bitmap split_k > 1 here ran unsplit)
                    acc = torch.zeros(shape, dtype=torch.float32, device=device)
                    if rec.run((values, b, acc, acc)):
                        last_config = config
                        return acc if dtype == torch.float32 else acc.to(dtype)
                else:
                    c = torch.empty(shape, dtype=dtype, device=device)
                    if rec.run((values, b) + (c,) * (rec.width - 2)):  # C in every slot after b
                        last_config = config
                        return c
        ro, ci, sw, ci16, bitmap, max_row, bounds = self._tables
        out: list = []
        deterministic = torch.are_deterministic_algorithms_enabled()
        c = spmm(ro, ci, sw, values, b, column_indices16=ci16, bitmap=bitmap, record=out, max_row=max_row,
                 row_bounds=bounds)
        config, rec, sizes = (out + [None, None, None])[:3]
        self._state = None if rec is None else (rec, deterministic, (c.shape, c.dtype, c.device), config, sizes)
        return c


def _launch(cfg: SpmmConfig, row_bounds, column_indices, row_swizzle, values, b, bias, relu, c, column_indices16=None,
            bitmap=None, record: list | None = None) -> None:
    if cfg.kind == "densify":
        if bitmap is None:
            raise ValueError("spmm(): a densify configuration needs the topology's bitmap (Topology.bitmap)")
        _launch_densify(cfg, bitmap, values, b, bias, relu, c, record)
        return
    if cfg.kind == "bitmap":
        if bitmap is None:
            raise ValueError("spmm(): a bitmap configuration needs the topology's bitmap (Topology.bitmap)")
        split = bitmap_splits(cfg, c.shape[-2], c.shape[-1], b.shape[-2], c.shape[0] if c.dim() == 3 else 1)
        _launch_bitmap(cfg, split, bitmap, values, b, bias, relu, c, record)
        return
    if cfg.compact:
        if column_indices16 is None:
            raise ValueError("spmm(): a compact configuration needs the 16-bit column indices (k <= 32767)")
        column_indices = column_indices16
    if cfg.split_k > 1:
        _launch_split(lambda acc: _launch_grid(cfg, row_bounds, column_indices, row_swizzle, values, b, None, False, acc,
                                               record if bias is None and not relu else None), bias, relu, c)
        return
    _launch_grid(cfg, row_bounds, column_indices, row_swizzle, values, b, bias, relu, c, record)


def _launch_split(run, bias, relu, c) -> None:
    """Split-K: ``run(acc)`` adds partial sums atomically into a zeroed fp32 buffer (C itself when C
    is fp32); then the epilogue (bias, ReLU, cast) as tensor operations."""
    acc = c if c.dtype == torch.float32 else torch.empty(c.shape, dtype=torch.float32, device=c.device)
    acc.zero_()
    run(acc)
    if bias is not None:
        acc += bias.to(torch.float32)[..., None]
    if relu:
        acc.relu_()
    if acc is not c:
        c.copy_(acc)


def _batch_launches(values, b, bias, c) -> tuple[list, tuple]:
    """What both kernel families take per launch of at most MAX_GRID_YZ batch entries:
    [(entries, values, b, bias (c as a placeholder when None), c)], operands that vary over the
    batch sliced to the launch's first entry; and the strides that follow the sizes in both
    signatures (values, b, b's two, bias, C's three; batch strides 0 where an operand does not vary)."""
    batch = c.shape[0] if c.dim() == 3 else 1
    stride_vb, stride_bb, stride_biasb = batch_stride(values, 1), batch_stride(b, 2), batch_stride(bias, 1)
    strides = (stride_vb, stride_bb, b.stride(-2), b.stride(-1), stride_biasb, c.stride(0) if batch > 1 else 0,
               c.stride(-2), c.stride(-1))
    chunks = []
    for b0 in range(0, batch, MAX_GRID_YZ):
        chunks.append((
            min(MAX_GRID_YZ, batch - b0),
            values[b0:] if stride_vb and b0 else values,
            b[b0:] if stride_bb and b0 else b,
            (bias[b0:] if stride_biasb and b0 else bias) if bias is not None else c,
            c[b0:] if b0 else c,
        ))
    return chunks, strides


def _launch_grid(cfg: SpmmConfig, row_bounds, column_indices, row_swizzle, values, b, bias, relu, c,
                 record: list | None = None) -> None:
    """One launch per MAX_GRID_YZ batch entries. ``record`` (unbatched, no bias): gets the launch's
    Prepared record, the operands values, b and c (c also in bias's place) to be replaced."""
    m, n = c.shape[-2], c.shape[-1]
    sizes = (m, n)
    grid_r = cdiv(m, cfg.rows) * cfg.split_k
    grid_n = cdiv(n, cfg.block_n)
    if grid_n > MAX_GRID_YZ:
        raise ValueError(f"spmm(): n = {n} needs {grid_n} column tiles, more than the {MAX_GRID_YZ} a launch allows")
    if cfg.kind == "1d":
        kernel = _spmm_1d_kernel
        constexprs = {"ROWS": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n, "EVEN_N": n % cfg.block_n == 0,
                      "HAS_BIAS": bias is not None, "RELU": relu, "SPLIT_K": cfg.split_k, "CHUNK_MAJOR": cfg.chunk_major,
                      "PREFETCH": cfg.prefetch}
    elif cfg.kind == "flat":
        kernel = _spmm_flat_kernel
        k = b.shape[-2]
        reach = (k - 1) * abs(b.stride(-2)) + (cdiv(n, cfg.block_n) * cfg.block_n - 1) * abs(b.stride(-1))
        constexprs = {"ROWS": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n, "EVEN_N": n % cfg.block_n == 0,
                      "WIDE": reach >= 2**31, "PACK": cfg.pack if pack_allowed(column_indices, values, cfg.pack) else 1,
                      "HAS_BIAS": bias is not None, "RELU": relu, "SPLIT_K": cfg.split_k, "CHUNK_MAJOR": cfg.chunk_major}
        sizes = (m, n, column_indices.numel())
    else:
        kernel = _spmm_kernel
        constexprs = {"ROWS": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n, "HAS_BIAS": bias is not None, "RELU": relu,
                      "PREFETCH": cfg.prefetch}
    chunks, strides = _batch_launches(values, b, bias, c)
    prepare = (3, 4, 5, 6) if record is not None and bias is None and len(chunks) == 1 else None
    for nb, v, bb, bi, cc in chunks:
        rec = launch(kernel, (grid_r, grid_n, nb), (row_bounds, column_indices, row_swizzle, v, bb, bi, cc, *sizes,
                                                    *strides), constexprs, cfg.num_warps, cfg.num_stages, prepare)
        if prepare is not None:
            record.append(rec)


def pack_allowed(column_indices: torch.Tensor, values: torch.Tensor, pack: int) -> bool:
    """Whether the flat kernel may read indices and values ``pack`` (2 or 4) entries to a 32- or
    64-bit load: 16-bit indices and values, both aligned to that word, and every batch entry of
    the values too. (A config whose pack is not allowed runs with single entries.)"""
    return (pack > 1 and column_indices.dtype == torch.int16 and values.dtype in (torch.float16, torch.bfloat16)
            and column_indices.data_ptr() % (2 * pack) == 0 and values.data_ptr() % (2 * pack) == 0
            and batch_stride(values, 1) % pack == 0)


def traffic_bytes(cfg: SpmmConfig | None, m: int, k: int, n: int, nnz: int, element_bytes: int) -> int:
    """Bytes a launch with ``cfg`` must move at least: A in the form its kernel reads — values
    and 16-bit (``compact``) or 32-bit column indices, row offsets and swizzle; or, for "bitmap",
    values and the bitmap's two int32 words per 32 columns of each row (rows padded to 256
    columns), and for "densify" also its M × K scratch (2 × M × K in fp32) written and read — B read once and C written
    once. ``cfg`` None: the 32-bit CSR form."""
    b_and_c = (k * n + m * n) * element_bytes
    if cfg is not None and cfg.kind in ("bitmap", "densify"):
        # written once and read once; fp32's holds heads and tails
        scratch = 2 * m * k * element_bytes * (2 if element_bytes == 4 else 1) if cfg.kind == "densify" else 0
        return nnz * element_bytes + m * cdiv(k, 256) * 8 * 8 + scratch + b_and_c
    index = 2 if cfg is not None and cfg.compact else 4
    return nnz * (element_bytes + index) + (m + 1) * 4 + m * 4 + b_and_c


_CONFIG_FIELD = re.compile(r"(\w+)=('[^']*'|[\w.]+)")


def parse_config(text: str | None) -> SpmmConfig | None:
    """The :class:`SpmmConfig` of its ``str()`` (as benchmark records keep it), or None. Fields a
    record lacks keep their defaults; unknown ones are ignored."""
    if not text or not text.startswith("SpmmConfig("):
        return None
    names = {f.name: f.type for f in dataclasses.fields(SpmmConfig)}
    fields = {}
    for name, value in _CONFIG_FIELD.findall(text):
        if name not in names:
            continue
        fields[name] = value.strip("'") if value.startswith("'") else (value == "True" if value in ("True", "False") else int(value))
    try:
        return SpmmConfig(**fields)
    except TypeError:
        return None


_BITMAP_PROGRAMS = 4 * 132
"""Programs a bitmap launch aims for (four per H100 SM) when it splits K."""


def bitmap_splits(cfg: SpmmConfig, m: int, n: int, k: int, batch: int) -> int:
    """Into how many K ranges a bitmap launch splits: ``cfg.split_k`` when set, else (0) enough
    for ~4 programs per SM, each range at least 4 BLOCK_K tiles long."""
    k_tiles = cdiv(k, cfg.block_k)
    if cfg.split_k:
        split = cfg.split_k
    else:
        programs = cdiv(m, cfg.rows) * cdiv(n, cfg.block_n) * batch
        split = min(cdiv(_BITMAP_PROGRAMS, programs), max(1, k_tiles // 4))
    if split <= 1:
        return 1
    return cdiv(k_tiles, cdiv(k_tiles, split))  # no empty ranges


_MAX_PARTIALS = 1 << 26
"""Largest partial-sum buffer (fp32 elements, 256 MB) a split bitmap launch takes; beyond it, unsplit."""

_SPLIT_BUFFERS: dict = {}
"""(device, stream) -> (partials, arrivals): the split bitmap launches' fp32 partial sums and
per-tile arrival counts. The counts are zeroed once and each launch leaves them at zero; launches
on one stream run in order, so they may share both buffers (launches on two streams may not)."""


def _split_buffers(device: torch.device, partials: int, tiles: int):
    """Buffers of at least these sizes for the current stream. Inside a CUDA-graph capture, fresh
    ones from the graph's pool instead (its replays then zero the counts themselves: a memset node),
    since the capture stream's launches replay whenever the graph does."""
    if capturing(device):
        return (torch.empty(partials, dtype=torch.float32, device=device),
                torch.zeros(tiles, dtype=torch.int32, device=device))
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    key = (device, stream)
    have = _SPLIT_BUFFERS.get(key)
    if have is not None and have[0].numel() >= partials and have[1].numel() >= tiles:
        return have
    grown = (torch.empty(max(partials, have[0].numel() if have else 0), dtype=torch.float32, device=device),
             torch.zeros(max(tiles, have[1].numel() if have else 0), dtype=torch.int32, device=device))
    _SPLIT_BUFFERS[key] = grown
    return grown


def _launch_bitmap(cfg: SpmmConfig, split: int, bitmap, values, b, bias, relu, c, record: list | None = None) -> None:
    """``record`` (unbatched, no bias): gets the launch's Prepared record, the operands values, b,
    bias, c, partials and arrivals to be replaced (c in the bias slot, and unsplit in the partials
    and arrivals slots too: unread there); split, then also the (partials, tiles) sizes that
    :func:`_split_buffers` must be asked for, since those buffers belong to the stream that
    launches and may be regrown between calls."""
    bits, word_offsets = bitmap
    if cfg.block_k % 32 or 256 % cfg.block_k or cfg.block_n < 16:
        # the bitmap's rows are padded to 256 columns: a tile must divide that (and tl.dot needs N >= 16)
        raise ValueError(f"spmm(): a bitmap configuration needs BLOCK_K in (32, 64, 128, 256) and BLOCK_N >= 16, got {cfg}")
    m, n = c.shape[-2], c.shape[-1]
    k = b.shape[-2]
    k_tiles = cdiv(cdiv(k, cfg.block_k), split)
    grid_1 = cdiv(n, cfg.block_n) * split
    if grid_1 > MAX_GRID_YZ:
        raise ValueError(f"spmm(): n = {n} needs {grid_1} column tiles × splits, more than the {MAX_GRID_YZ} a launch allows")
    chunks, strides = _batch_launches(values, b, bias, c)
    partials = arrivals = c  # placeholders, unread without SPLIT
    if split > 1:
        tiles = cdiv(m, cfg.rows) * cdiv(n, cfg.block_n) * chunks[0][0]
        size = split * tiles * cfg.rows * cfg.block_n
        if size > _MAX_PARTIALS:
            split, k_tiles, grid_1 = 1, cdiv(k, cfg.block_k), cdiv(n, cfg.block_n)
        else:
            partials, arrivals = _split_buffers(c.device, size, tiles)
    constexprs = {"BLOCK_M": cfg.rows, "BLOCK_K": cfg.block_k, "BLOCK_N": cfg.block_n, "EVEN_K": k % cfg.block_k == 0,
                  "EVEN_N": n % cfg.block_n == 0, "HAS_BIAS": bias is not None, "RELU": relu, "SPLIT": split > 1,
                  "HW_POPC": b.is_cuda, "COALESCE": cfg.coalesce,
                  "INPUT_PRECISION": dot_precision(b, "tf32x3"), "PREFETCH": cfg.prefetch}
    prepare = (2, 3, 4, 5, 6, 7) if record is not None and bias is None and len(chunks) == 1 else None
    for nb, v, bb, bi, cc in chunks:
        rec = launch(_spmm_bitmap_kernel, (cdiv(m, cfg.rows), grid_1, nb),
                     (bits, word_offsets, v, bb, bi, cc, partials, arrivals, m, n, k, bits.shape[1], k_tiles, *strides),
                     constexprs, cfg.num_warps, cfg.num_stages, prepare)
        if prepare is not None:
            record.append(rec)
            if split > 1 and rec is not None:
                record.append((size, tiles))


DENSIFY = SpmmConfig(16, 128, 0, 4, 1, "densify")
"""The densify form (decode A into a dense scratch, then a dense product): one configuration, its
decode tile 16 × 128 (small, so that a DLMC-sized A, 512 × 512, still spreads over 128 programs)."""

DENSIFY_MIN_N = 128
"""Narrowest N the densify form is offered at: below, its decode (M·K elements, once) is not spread
over enough columns, and the bitmap kernel's single pass is the cheaper one."""

DENSIFY_MAX_BYTES = 64 << 20
"""Largest dense scratch (M·K elements of the values' dtype, times the values' batch; twice that in
fp32, heads and tails) the densify form allocates per call (64 MiB); beyond it, it is not offered."""

DENSIFY_X3_TILE = (128, 64, 32, 4, 3)
"""The fp32 densify product's tile (BLOCK_M, BLOCK_N, BLOCK_K), warps and stages: the fastest or
within 4% of it of four tiles probed on four shapes, 512-4096 rows, N = 2048-4096, where its grid
fills the GPU (H200, benchmarks/results/2026-12-01_h200_88bb52c/probe_x3b.json)."""

DENSIFY_X3_SMALL_TILE = (64, 64, 32, 4, 3)
"""The tile where DENSIFY_X3_TILE's grid would leave SMs idle (fewer programs than SMs): 15.6
against 19.1 µs at 512×512×256 (16 programs; same probe)."""


def _x3_tile(m: int, n: int, batch: int, device: torch.device) -> tuple:
    """The fp32 densify product's tile for C (batch, m, n) on ``device``."""
    bm, bn = DENSIFY_X3_TILE[:2]
    if device.type != "cuda":
        return DENSIFY_X3_TILE
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return DENSIFY_X3_SMALL_TILE if cdiv(m, bm) * cdiv(n, bn) * batch < sms else DENSIFY_X3_TILE


def densify_allowed(m: int, k: int, n: int, batch: int, dtype: torch.dtype) -> bool:
    """Whether the tuner may time the densify form: fp16/bf16/fp32, N >= DENSIFY_MIN_N, a scratch
    within DENSIFY_MAX_BYTES, K within one decode launch's column tiles; in fp32 also N within one
    launch's column tiles (the tuner's key caps N at 8192 and K at 2**16: a choice made there must
    not be reused at a size the form cannot launch)."""
    if dtype not in (torch.float16, torch.bfloat16, torch.float32) or n < DENSIFY_MIN_N:
        return False
    if cdiv(k, DENSIFY.block_k) > MAX_GRID_YZ:  # the decode's column tiles (the tuner's key caps k)
        return False
    if dtype == torch.float32 and cdiv(n, DENSIFY_X3_TILE[1]) > MAX_GRID_YZ:
        return False
    return m * k * batch * (8 if dtype == torch.float32 else 2) <= DENSIFY_MAX_BYTES


def _launch_densify(cfg: SpmmConfig, bitmap, values, b, bias, relu, c, record: list | None = None) -> None:
    """C = A·B as A decoded into a dense scratch (every element written: one pass over the bitmap and
    the values, no memset) and a dense product over it: for fp16/bf16 cuBLAS on the GPU, the bias
    added in the product's epilogue (``addmm``/``baddbmm``: one rounding), then ReLU; for fp32 A
    is decoded as TF32 heads and tails and :func:`_densify_x3_kernel` multiplies, bias and ReLU in
    its epilogue. The scratch is transient: M·K elements per value batch (twice that in fp32).
    Outside autograd (a kernel launcher): ``out=`` products. ``record`` (unbatched, no bias, no
    ReLU, C of b's dtype): gets the decode launch's Prepared record (the values and the scratch to
    be replaced), then (the scratch's shape, the fp32 product's Prepared record or None);
    :class:`SpmmPlan` repeats them (or the decode and ``torch.mm``)."""
    bits, word_offsets = bitmap
    if cfg.block_k % 32 or 256 % cfg.block_k:
        raise ValueError(f"spmm(): a densify configuration needs BLOCK_K in (32, 64, 128, 256), got {cfg}")
    m, k = c.shape[-2], b.shape[-2]
    grid_k = cdiv(k, cfg.block_k)
    if grid_k > MAX_GRID_YZ:
        raise ValueError(f"spmm(): k = {k} needs {grid_k} column tiles, more than the {MAX_GRID_YZ} a launch allows")
    batched = values.dim() == 2
    nv = values.shape[0] if batched else 1
    x3 = values.dtype == torch.float32
    shape = ((2,) if x3 else ()) + ((nv, m, k) if batched else (m, k))
    dense = torch.empty(shape, dtype=values.dtype, device=values.device)
    heads = dense[0] if x3 else dense
    lo_offset = nv * m * k if x3 else 0
    constexprs = {"BLOCK_M": cfg.rows, "BLOCK_K": cfg.block_k, "HW_POPC": values.is_cuda, "SPLIT": x3}
    prepare = ((2, 3) if record is not None and not batched and c.dim() == 2 and bias is None and not relu
               and c.dtype == b.dtype else None)
    rec = None
    for v0 in range(0, nv, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, nv - v0)
        v = values[v0] if batched else values
        out = heads[v0] if batched else heads
        rec = launch(_bitmap_densify_kernel, (cdiv(m, cfg.rows), grid_k, nb),
                     (bits, word_offsets, v, out, m, k, bits.shape[1], values.stride(0) if batched else 0,
                      m * k, k, lo_offset), constexprs, cfg.num_warps, 1, prepare)
    if x3:
        product = _launch_densify_x3(heads, lo_offset, nv, b, bias, relu, c, prepare is not None)
        if prepare is not None:  # no repeat of the decode without one of the product
            record += [rec if product is not None else None, (shape, product)]
        return
    if prepare is not None:
        record += [rec, (shape, None)]  # the scratch's shape, as the record's sizes were baked in
    with torch.no_grad():
        target = c if c.dtype == b.dtype else torch.empty(c.shape, dtype=b.dtype, device=c.device)
        if bias is None:
            torch.matmul(dense, b, out=target)
        elif c.dim() == 2:
            torch.addmm(bias[:, None].expand(m, c.shape[-1]), dense, b, out=target)
        else:
            nb = c.shape[0]
            torch.baddbmm(bias[..., None].expand(c.shape), dense.expand(nb, m, k), b.expand(nb, k, c.shape[-1]),
                          out=target)
        if relu:
            target.relu_()
        if target is not c:  # another output dtype (a forced configuration only): rounded to b's first
            c.copy_(target)


def _launch_densify_x3(heads, lo_offset: int, nv: int, b, bias, relu: bool, c, prepare: bool):
    """C = A·B (+ bias, ReLU) over A's split scratch (``heads``: (nv, m, k) or (m, k), the tails
    ``lo_offset`` elements further on) by :func:`_densify_x3_kernel`; C (batch, m, n) or (m, n).
    Returns the Prepared record of the launch (scratch, b, bias slot, C) where ``prepare`` (an
    unbatched launch without bias) and the direct launch can serve it, else None."""
    m, k, n = c.shape[-2], b.shape[-2], c.shape[-1]
    nbc = c.shape[0] if c.dim() == 3 else 1
    bm, bn, bk, warps, stages = _x3_tile(m, n, nbc, c.device)
    grid_m, grid_n = cdiv(m, bm), cdiv(n, bn)
    if grid_n > MAX_GRID_YZ:
        raise ValueError(f"spmm(): n = {n} needs {grid_n} column tiles, more than the {MAX_GRID_YZ} a launch allows")
    stride_ab = m * k if nv > 1 else 0
    stride_bb = batch_stride(b, 2)
    stride_biasb = batch_stride(bias, 1)
    constexprs = {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "HAS_BIAS": bias is not None, "RELU": relu,
                  "INPUT_PRECISION": "tf32"}
    rec = None
    for c0 in range(0, nbc, MAX_GRID_YZ):
        nb = min(MAX_GRID_YZ, nbc - c0)
        a0 = heads[c0] if nv > 1 else heads  # a batch of one (values (1, nnz)) has stride 0
        b0 = b[c0] if stride_bb else b
        cc = c[c0] if c.dim() == 3 else c
        bias0 = (bias[c0] if stride_biasb else bias) if bias is not None else cc
        rec = launch(_densify_x3_kernel, (grid_m, grid_n, nb),
                     (a0, b0, bias0, cc, m, n, k, lo_offset, stride_ab, stride_bb, b.stride(-2), b.stride(-1),
                      stride_biasb, m * n, n), constexprs, warps, stages, (0, 1, 2, 3) if prepare else None)
    return rec
