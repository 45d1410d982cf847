"""Load sparse, scatter, compute dense: A's nonzeros scattered per nonzero into a per-program
scratch tile in global memory (L1/L2-resident), read back dense and fed to ``tl.dot`` (issue #5.1:
N = 8-64, where the flat and bitmap kernels run at 0.5-0.9x cuBLAS bf16).

Why: Flash-LLM and SpInfer beat dense at 70-90% sparsity by scattering each nonzero into a zeroed
shared-memory tile (about one instruction a nonzero) and running the tensor cores on it. Triton
has no shared-memory scatter, so the library's bitmap kernel decodes per *element* instead (~15
SASS instructions an element: 72 µs for 8192² at 80%, N = 16, where cuBLAS takes 47-60 µs). Here
the scatter goes to global memory: each program owns a BM×BK bf16 scratch tile (32 KB at 64×256),
stores its tile's nonzeros there, passes a barrier, loads the tile dense (coalesced, 16-byte
vectors), and zeroes it again before the next tile. The weight is stored "tiled COO": per
(BM-row block, BK-column tile) a run of (bf16 value, int16 position r·BK + c) pairs, 4 bytes a
nonzero like the library's 16-bit CSR, plus one int32 offset per tile.

Floor, 8192², 80%, N = 16, bf16 (13.4 M nonzeros): 54 MB of values and positions, 12.2 µs at the
measured 4.41 TB/s DRAM read rate. The scatter's stores write through to the L2: at 20% density
nearly every 32-byte sector of the dense tile receives a value, so ~134 MB of partial-sector
writes, and the re-zeroing as much again; the dense reload hits L1 if the written lines stay there
(else 134 MB more L2 reads). At an L2 rate of ~15-18 TB/s that is 15-25 µs, overlapped with the
DRAM stream. Prediction (written before any run, seventh session): 25-35 µs, 1.3-1.9x cuBLAS bf16
(47 µs under this timer, `2026-12-01_h200_b4063b1/probe_chunk.json`); at 90% ~20 µs; at 50% about
cuBLAS (the compact form is then as many bytes as dense).

Outcome (seventh session, ``benchmarks/results/2026-12-01_h200_b4063b1/probe_scatter{,2}.json``,
144 variants, every output checked twice): missed by 3x. Best 94.5 µs at 80% (0.50x cuBLAS), 73.5 µs
at 95%, 116 µs at 50%; splits help up to 4 ways, then every tile plateaus at ~95 µs. The reload and
re-zeroing alone (the 95% case) move 268 MB in 73.5 µs, ~3.7 TB/s: DRAM's rate, not the L2's read
rate that the prediction assumed. A scatter target must be shared memory, which Triton does not offer.

Variants: BM ∈ {64, 128}, BK ∈ {128, 256}, 4 or 8 warps, split-K 1/2/4 (fp32 atomics into a zeroed
buffer, then a cast), zeroing by a dense store of the tile or per nonzero (the positions re-read).
Every output is checked against float64 first; each call is a CUDA-graph replay under do_bench
(`probe_prefetch.bench_graph`: L2 flushed, no host time). Run from the repository root:

    PYTHONPATH=src python3 benchmarks/probe_scatter.py [--budget S] [--out F]

(``SCATTER_SET=2``: the second run's grid, split 8-32 and 16-64-row blocks.)
"""
from __future__ import annotations

import itertools
import math
import os
import sys
import time

import torch
import triton
import triton.language as tl

import _probe
from _probe import log
from probe_prefetch import DEVICE, bench_graph

from sgk.kernels._common import dot_precision, mma
from sgk.testing import relative_error

T0 = time.time()
TOL = 2e-2
DTYPE = torch.bfloat16
SHAPES = [(8192, 8192, 16, 0.8), (8192, 8192, 16, 0.9), (8192, 8192, 16, 0.5), (4096, 14336, 16, 0.8),
          (14336, 4096, 16, 0.8), (8192, 8192, 8, 0.8), (8192, 8192, 32, 0.8), (8192, 8192, 64, 0.8),
          (8192, 8192, 16, 0.95), (8192, 8192, 16, 0.7)]
GRID = list(itertools.product((64, 128), (128, 256), (4, 8), (1, 2, 4), (True, False)))  # BM, BK, warps, split, dense zero
if os.environ.get("SCATTER_SET") == "2":  # the second run: more programs (split 8-32, smaller row blocks)
    GRID = [g for g in itertools.product((16, 32, 64), (64, 128), (2, 4, 8), (8, 16, 32), (True, False))
            if not (g[0] == 16 and g[2] == 8)]
if DEVICE == "cpu":  # a smoke run under TRITON_INTERPRET=1
    SHAPES = [(100, 300, 16, 0.8), (64, 200, 5, 0.5)]
    GRID = [(64, 128, 4, 1, True), (64, 128, 4, 2, False), (32, 64, 4, 3, True)]


def tiled_coo(a_dense: torch.Tensor, bm: int, bk: int):
    """(tile offsets int32 [MB·KT + 1], values, int16 positions r·bk + c) of A's nonzeros, tile by
    tile in (row block, column tile) order, row-major inside a tile."""
    m, k = a_dense.shape
    if bm * bk > 32768:
        raise ValueError(f"tiled_coo: bm·bk = {bm * bk} does not fit a 16-bit position")
    r, c = a_dense.nonzero(as_tuple=True)
    kt = triton.cdiv(k, bk)
    tile = (r // bm) * kt + c // bk
    pos = (r % bm) * bk + c % bk
    order = torch.argsort(tile * (bm * bk) + pos)
    counts = torch.bincount(tile, minlength=triton.cdiv(m, bm) * kt)
    ptr = torch.zeros(counts.numel() + 1, dtype=torch.int64, device=a_dense.device)
    ptr[1:] = torch.cumsum(counts, 0)
    return ptr.to(torch.int32), a_dense[r, c][order].contiguous(), pos[order].to(torch.int16).contiguous()


@triton.jit
def _scatter_spmm(ptr, vals, pos, b, c, scratch, K, N, KT, TPS, stride_bk, stride_cm,
                  BM: tl.constexpr, BK: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
                  SPLIT: tl.constexpr, DENSE_ZERO: tl.constexpr, INPUT_PRECISION: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_s = tl.program_id(1)
    sbase = scratch + (pid_m * SPLIT + pid_s).to(tl.int64) * (BM * BK)
    rm = tl.arange(0, BM)
    rk = tl.arange(0, BK)
    rn = tl.arange(0, BN)
    dense = rm[:, None] * BK + rk[None, :]
    acc = tl.zeros((BM, BN), tl.float32)
    kt0 = pid_s * TPS
    kt1 = tl.minimum(kt0 + TPS, KT)
    for kt in range(kt0, kt1):
        t = pid_m * KT + kt
        start = tl.load(ptr + t)
        end = tl.load(ptr + t + 1)
        for j in range(start, end, CHUNK):
            o = j + tl.arange(0, CHUNK)
            msk = o < end
            v = tl.load(vals + o, mask=msk)
            p = tl.load(pos + o, mask=msk, other=0).to(tl.int32)
            tl.store(sbase + p, v, mask=msk)
        tl.debug_barrier()
        a = tl.load(sbase + dense)
        tl.debug_barrier()
        if DENSE_ZERO:
            tl.store(sbase + dense, tl.zeros((BM, BK), a.dtype))
        else:
            for j in range(start, end, CHUNK):
                o = j + tl.arange(0, CHUNK)
                msk = o < end
                p = tl.load(pos + o, mask=msk, other=0).to(tl.int32)
                tl.store(sbase + p, tl.zeros((CHUNK,), a.dtype), mask=msk)
        tl.debug_barrier()
        kk = kt * BK + rk
        bt = tl.load(b + kk[:, None].to(tl.int64) * stride_bk + rn[None, :],
                     mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = mma(a, bt, acc, INPUT_PRECISION)
    cm = pid_m * BM + rm
    cmask = (rn[None, :] < N)
    out = c + cm[:, None].to(tl.int64) * stride_cm + rn[None, :]
    if SPLIT == 1:
        tl.store(out, acc.to(c.dtype.element_ty), mask=cmask)
    else:
        tl.atomic_add(out, acc, mask=cmask, sem="relaxed")


class Scatter:
    """One variant on one weight: the tiled-COO form built once, the scratch zeroed once (every
    launch leaves it zero), a call = (zero the fp32 buffer,) launch (, cast)."""

    def __init__(self, a_dense, n, bm, bk, warps, split, dense_zero):
        m, k = a_dense.shape
        self.ptr, self.vals, self.pos = tiled_coo(a_dense, bm, bk)
        self.m_pad = triton.cdiv(m, bm) * bm
        self.kt = triton.cdiv(k, bk)
        self.split = min(split, self.kt)
        self.tps = triton.cdiv(self.kt, self.split)
        self.grid = (self.m_pad // bm, self.split)
        self.scratch = torch.zeros(self.grid[0] * self.grid[1] * bm * bk, dtype=a_dense.dtype, device=a_dense.device)
        self.bm, self.bk, self.bn, self.warps, self.dense_zero = bm, bk, max(16, triton.next_power_of_2(n)), warps, dense_zero
        self.chunk = min(1024, bm * bk // 8)
        self.m, self.n = m, n
        odt = torch.float32 if self.split > 1 else a_dense.dtype
        self.c = torch.empty(self.m_pad, n, dtype=odt, device=a_dense.device)

    def __call__(self, b):
        if self.split > 1:
            self.c.zero_()
        _scatter_spmm[self.grid](self.ptr, self.vals, self.pos, b, self.c, self.scratch, b.shape[0], self.n, self.kt,
                                 self.tps, b.stride(0), self.c.stride(0), BM=self.bm, BK=self.bk, BN=self.bn,
                                 CHUNK=self.chunk, SPLIT=self.split, DENSE_ZERO=self.dense_zero,
                                 INPUT_PRECISION=dot_precision(b, "ieee"),
                                 num_warps=self.warps, num_stages=1)
        out = self.c[:self.m]
        return out.to(b.dtype) if self.split > 1 else out


def _name(v) -> str:
    bm, bk, w, s, dz = v
    return f"{bm}x{bk} w{w} s{s} {'dense0' if dz else 'nnz0'}"


def one_shape(rows, m, k, n, sp, grid, budget) -> dict:
    g = torch.Generator().manual_seed(m * 7 + k * 3 + n + int(sp * 100))
    keep = torch.rand(m, k, generator=g) >= sp
    a = (torch.randn(m, k, generator=g) * keep).to(DTYPE).to(DEVICE)
    b = torch.randn(k, n, generator=g).to(DTYPE).to(DEVICE)
    ref = a.double() @ b.double()
    rec = {"section": "scatter", "m": m, "k": k, "n": n, "sparsity": sp, "nnz": int(keep.sum()), "variants": {}}
    rec["cublas_ms"] = bench_graph(lambda: a @ b)
    rec["bytes_compact"] = rec["nnz"] * 4
    for v in grid:
        if time.time() - T0 > budget:
            rec["cut_by_budget"] = True
            break
        try:
            fn = Scatter(a, n, *v)
            out = fn(b)
            err = relative_error(out, ref)
            out2 = fn(b)  # the scratch must be left zero: a second call gives the same answer
            err2 = relative_error(out2, ref)
            ok = err <= TOL and err2 <= TOL
            ms = bench_graph(lambda: fn(b)) if ok else math.nan
            if ok:
                err3 = relative_error(fn(b), ref)  # after the timed replays
                ok = err3 <= TOL
            rec["variants"][_name(v)] = {"ms": ms if ok else math.nan, "rel_err": [err, err2], "ok": ok}
        except Exception as e:  # noqa: BLE001 (one variant that cannot run must not lose the rest)
            rec["variants"][_name(v)] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    log(rows, **rec)
    return rec


def scatter(rows, budget):
    first = one_shape(rows, *SHAPES[0], GRID, budget)
    timed = {v: first["variants"].get(_name(v), {}).get("ms", math.nan) for v in GRID}
    best = sorted((v for v in GRID if not math.isnan(timed[v])), key=timed.get)[:6] or GRID[:2]
    for shape in SHAPES[1:]:
        if time.time() - T0 > budget:
            log(rows, section="scatter_cut", shapes_left=SHAPES[SHAPES.index(shape):])
            return
        try:
            one_shape(rows, *shape, best, budget)
        except Exception as e:  # noqa: BLE001
            log(rows, section="scatter_error", shape=shape, error=f"{type(e).__name__}: {str(e)[:300]}")


def _summary(r) -> str | None:
    if r.get("section") != "scatter":
        return f"  {r}" if str(r.get("section", "")).startswith("scatter_") else None
    timed = {k: v["ms"] for k, v in r["variants"].items() if not math.isnan(v.get("ms", math.nan))}
    bad = [k for k, v in r["variants"].items() if not v.get("ok", False)]
    if not timed:
        return f"  {r['m']}x{r['k']} n={r['n']} {r['sparsity']}: none ran ({bad[:3]})"
    best = min(timed, key=timed.get)
    us = timed[best] * 1e3
    return (f"  {r['m']}x{r['k']} n={r['n']:3d} {r['sparsity']:.2f}  cuBLAS {r['cublas_ms'] * 1e3:6.1f} µs  "
            f"scatter {us:6.1f} µs ({best})  {r['cublas_ms'] * 1e3 / us:.2f}x cuBLAS  "
            f"{r['bytes_compact'] / (us * 1e-6) / 1e12:.2f} TB/s compact  failed {len(bad)}")


if __name__ == "__main__":
    sys.exit(_probe.run("probe_scatter", __doc__, {"scatter": scatter}, _summary, budget=300.0, t0=T0))
