"""The fp32 densify product's accumulation and B's split (issue 3 fp32; ninth 2026-12-01 session).

The fresh-sum form (each K step's three TF32 products summed apart, then added in registers) fixed
the densify form's accuracy but ran 23-42% slower than the first, running-accumulator form. This
probe times the product alone (A's TF32 parts made by torch, as the decode writes them) to find
where the time goes. Section ``modes``: MODE 0 running accumulator (the first form), 1 fresh sum
each step (the library), 2 the fresh sum added one step late (the add off the MMAs' critical
path), over eight tiles, B split as the library did (both parts rounded, guarded). Section
``splits``: the fresh sum with seven splits of B (SPLIT 0 both rounded and guarded; 1 head
truncated, tail raw, left to the MMA, which reads the top 19 bits; 2 head rounded and guarded,
tail raw; 3 head rounded unguarded; 4 head by ``cvt.rna.tf32.f32``; 5 by
``cvt.rna.satfinite.tf32.f32``; 6 rounded, NaN restored by a select) and the running accumulator
with split 1, over four tiles; plus ``edge`` rows: B holding a NaN, an inf and values near
FLT_MAX, whether each split gives the float64 product's NaNs and infs.

Prediction (before the run): the fresh sum's cost is the wait for each step's MMAs; adding one step
late or BLOCK_K 64 (half the adds) recovers most of it. Measured (``88bb52c/probe_x3*.json``): the
fresh sum costs nothing against the running accumulator with the same split; the late add and
BLOCK_K 64 are slower; B's rounding split is what costs (11-19%), the truncated head wins.
Every output is checked against float64 first; device times are CUDA-graph replays under
do_bench, the L2 flushed before each.

    PYTHONPATH=src python3 benchmarks/probe_x3.py [--only modes,splits,edge] [--budget S] [--out F]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
import triton
import triton.language as tl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _probe  # noqa: E402
from _probe import log  # noqa: E402

from sgk.kernels.spmm import _tf32_split  # noqa: E402
from sgk.testing import relative_error  # noqa: E402

T0 = time.time()
CPU = os.environ.get("TRITON_INTERPRET") == "1"
DEV = "cpu" if CPU else "cuda"
PRECISION = "ieee" if CPU else "tf32"  # the interpreter's products ignore TF32


@triton.jit
def _bsplit(x, SPLIT: tl.constexpr):
    if SPLIT == 0:  # the branch: both parts rounded, guarded
        hi, lo = _tf32_split(x)
    elif SPLIT == 1:  # truncated head, raw tail
        hi = (x.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)
        lo = x - hi
    elif SPLIT == 2:  # rounded guarded head, raw tail
        bits = x.to(tl.int32, bitcast=True)
        carry = tl.where((bits & 0x7FFFFFFF) >= 0x7F7FF000, 0, 0x1000)
        hi = ((bits + carry) & -8192).to(tl.float32, bitcast=True)
        lo = x - hi
    elif SPLIT == 3:  # rounded unguarded head, raw tail
        hi = ((x.to(tl.int32, bitcast=True) + 0x1000) & -8192).to(tl.float32, bitcast=True)
        lo = x - hi
    elif SPLIT == 4:  # cvt.rna.tf32.f32 head, raw tail
        hi = tl.inline_asm_elementwise("cvt.rna.tf32.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)
        lo = x - hi
    elif SPLIT == 5:  # cvt.rna.satfinite.tf32.f32 head, raw tail
        hi = tl.inline_asm_elementwise("cvt.rna.satfinite.tf32.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)
        lo = x - hi
    else:  # rounded unsigned-min guard head, raw tail
        bits = x.to(tl.int32, bitcast=True)
        hi = ((bits + 0x1000) & -8192).to(tl.float32, bitcast=True)
        hi = tl.where(hi == hi, hi, x)
        lo = x - hi
    return hi, lo


@triton.jit
def _x3(a_ptr, b_ptr, c_ptr, m, n, k, lo_offset, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr, MODE: tl.constexpr, P: tl.constexpr, SPLIT: tl.constexpr = 0):
    """The library's fp32 densify product (Cᵀ = Bᵀ·Aᵀ, three TF32 products, A's parts from memory,
    B split in registers) with the accumulation MODE and B's SPLIT as parameters; no bias, no batch."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < m
    col_ok = cols < n
    offs_k = tl.arange(0, BLOCK_K)
    a_tile = a_ptr + rows.to(tl.int64)[None, :] * k
    b_tile = b_ptr + cols.to(tl.int64)[:, None]
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    prev = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for k0 in tl.range(0, k, BLOCK_K):
        ks = k0 + offs_k
        k_ok = ks < k
        bt = tl.load(b_tile + ks.to(tl.int64)[None, :] * n, mask=col_ok[:, None] & k_ok[None, :], other=0.0)
        a_mask = k_ok[:, None] & row_ok[None, :]
        a_hi = tl.load(a_tile + ks[:, None], mask=a_mask, other=0.0)
        a_lo = tl.load(a_tile + lo_offset + ks[:, None], mask=a_mask, other=0.0)
        b_hi, b_lo = _bsplit(bt, SPLIT)
        if MODE == 0:
            acc = tl.dot(b_lo, a_hi, acc, input_precision=P)
            acc = tl.dot(b_hi, a_lo, acc, input_precision=P)
            acc = tl.dot(b_hi, a_hi, acc, input_precision=P)
        elif MODE == 1:
            part = tl.dot(b_lo, a_hi, tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32), input_precision=P)
            part = tl.dot(b_hi, a_lo, part, input_precision=P)
            acc += tl.dot(b_hi, a_hi, part, input_precision=P)
        else:
            part = tl.dot(b_lo, a_hi, tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32), input_precision=P)
            part = tl.dot(b_hi, a_lo, part, input_precision=P)
            part = tl.dot(b_hi, a_hi, part, input_precision=P)
            acc += prev
            prev = part
    acc += prev
    ptrs = c_ptr + rows.to(tl.int64)[None, :] * n + cols[:, None]
    tl.store(ptrs, acc, mask=row_ok[None, :] & col_ok[:, None])


SHAPES = [(512, 512, 2048), (2048, 512, 2048), (512, 2048, 2048), (4096, 1024, 4096), (512, 512, 256)]
MODE_TILES = [(128, 64, 32, 4, 3), (128, 64, 64, 4, 2), (128, 128, 32, 8, 3), (128, 128, 64, 8, 2),
              (64, 128, 32, 4, 3), (128, 64, 32, 4, 4), (256, 64, 32, 8, 3), (64, 64, 32, 4, 3)]
SPLIT_TILES = [(128, 64, 32, 4, 3), (128, 128, 32, 8, 3), (64, 128, 32, 4, 3), (64, 64, 32, 4, 3)]
MODES = [(1, 0), (2, 0), (0, 0)]
SPLITS = [(1, s) for s in range(7)] + [(0, 1)]
if CPU:  # a smoke run: no inline PTX under the interpreter
    SHAPES, MODE_TILES, SPLIT_TILES = [(40, 36, 70)], [(16, 16, 16, 1, 1)], [(16, 16, 16, 1, 1)]
    SPLITS = [(1, s) for s in (0, 1, 2, 3, 6)] + [(0, 1)]


def tf32(x: torch.Tensor) -> torch.Tensor:
    """x rounded to TF32 (to nearest; no guard: the probe's A is finite and small)."""
    return ((x.view(torch.int32) + 0x1000) & -8192).view(torch.float32)


def launch(scratch, b, c, m, n, k, tile, mode, split):
    bm, bn, bk, w, st = tile
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
    opts = {} if CPU else {"num_warps": w, "num_stages": st}
    return lambda: _x3[grid](scratch[0], b, c, m, n, k, m * k, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, MODE=mode,
                             SPLIT=split, P=PRECISION, **opts)


def sweep(name, variants, tiles):
    def run(rows: list, budget: float) -> None:
        for m, k, n in SHAPES:
            g = torch.Generator().manual_seed(m + 3 * k + n)
            a = torch.randn(m, k, generator=g) * (torch.rand(m, k, generator=g) > 0.7)  # 70% sparse
            b = torch.randn(k, n, generator=g)
            ref = a.double() @ b.double()
            a, b = a.to(DEV), b.to(DEV)
            hi = tf32(a)
            scratch = torch.stack([hi, tf32(a - hi)]).contiguous()
            c = torch.empty(m, n, device=DEV)
            base = dict(section=name, m=m, k=k, n=n)
            prev = torch.backends.cuda.matmul.allow_tf32
            try:
                torch.backends.cuda.matmul.allow_tf32 = False
                fn = lambda: torch.mm(a, b, out=c)  # noqa: E731
                fn()
                log(rows, **base, impl="cublas_fp32", us=1e3 * _probe.graph_ms(fn), rel_err=relative_error(c, ref))
            finally:
                torch.backends.cuda.matmul.allow_tf32 = prev
            for mode, split in variants:
                for t in tiles:
                    if time.time() - T0 > budget:
                        log(rows, section=name, status="skipped", reason="budget")
                        return
                    fn = launch(scratch, b, c, m, n, k, t, mode, split)
                    try:
                        c.fill_(float("nan"))
                        fn()
                        err = relative_error(c, ref)
                        us = 1e3 * _probe.graph_ms(fn) if err < 1e-4 else None
                        log(rows, **base, impl=f"m{mode}s{split}", tile=list(t), us=us, rel_err=err,
                            status="ok" if us else "wrong")
                    except Exception as e:  # noqa: BLE001 (a variant that cannot compile or run here)
                        log(rows, **base, impl=f"m{mode}s{split}", tile=list(t), status="error",
                            error=f"{type(e).__name__}: {e}"[:200])
    return run


def edge(rows: list, budget: float) -> None:
    """B with a NaN, an inf, FLT_MAX, -3.4e38 and 3.40195e38; A small: per split, whether C's NaNs
    and infs are the float64 product's (columns that differ listed)."""
    m, k, n = 128, 64, 64
    g = torch.Generator().manual_seed(5)
    a = torch.randn(m, k, generator=g) * 1e-2
    b = torch.randn(k, n, generator=g)
    b[3, 5], b[4, 6], b[7, 9] = float("nan"), float("inf"), torch.finfo(torch.float32).max
    b[8, 10], b[9, 11] = -3.4e38, 3.40195e38
    ref = (a.double() @ b.double()).float()
    hi = tf32(a)
    scratch = torch.stack([hi, tf32(a - hi)]).contiguous().to(DEV)
    bb = b.to(DEV)
    for mode, split in SPLITS:
        c = torch.empty(m, n, device=DEV)
        try:
            launch(scratch, bb, c, m, n, k, (128, 64, 32, 4, 3), mode, split)()
            c = c.cpu()
            bad = [j for j in range(n) if not bool(((c[:, j].isnan() == ref[:, j].isnan())
                                                    & (c[:, j].isinf() == ref[:, j].isinf())).all())]
            log(rows, section="edge", impl=f"m{mode}s{split}", status="ok", bad_cols=bad)
        except Exception as e:  # noqa: BLE001
            log(rows, section="edge", impl=f"m{mode}s{split}", status="error", error=f"{type(e).__name__}: {e}"[:300])


def _summary(r: dict) -> str | None:
    if r.get("section") == "edge":
        return f"edge  {r['impl']:6s} columns unlike float64's NaN/inf: {r.get('bad_cols', r.get('error'))}"
    if r.get("status") not in (None, "ok") or "us" not in r:
        return f"{r.get('section')} {r.get('impl')} {r.get('status')} {r.get('error', r.get('rel_err', ''))}"
    return (f"{r['section']:6s} {r['m']}x{r['k']}x{r['n']:<5d} {r['impl']:12s} {str(r.get('tile', '')):22s} "
            f"{r['us']:8.1f} us  err {r['rel_err']:.1e}")


def main(argv=None) -> int:
    return _probe.run("probe_x3", __doc__, {"modes": sweep("modes", MODES, MODE_TILES),
                                            "splits": sweep("splits", SPLITS, SPLIT_TILES), "edge": edge},
                      _summary, argv, t0=T0)


if __name__ == "__main__":
    sys.exit(main())
