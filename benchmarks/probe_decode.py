"""Device probe (one call): the flat-tile CSR SpMM against the other SpMM families and cuBLAS bf16
on decode shapes (issue 5.1), and the card's DRAM read and copy bandwidth.

Every timed output is checked against a float64 reference first (a configuration that fails is
recorded and not timed); cuBLAS is timed in the same run on the same operands. Writes
``$OUT/probe_decode.json`` (or ``--out``) and prints a short table last.

    PYTHONPATH=src python benchmarks/probe_decode.py [--only bw,decode] [--budget SECONDS]

Predictions, written before the run (docs/performance.md, "Tuning log"): the sm_90 code of the
flat kernel (no shared-memory layout conversion in its loop, 16-byte gathers of B's rows, int32
offsets) takes ~20 instructions a nonzero at N = 1, ~40 at N = 8, ~80 at N = 16 against ~25-90
(and 4 barriers a step) for the tile kernel. On the H200 (8192², 80%, 54 MB of compact CSR):
N = 1 near the DRAM floor (~15-20 µs, 2x cuBLAS bf16 or more); N = 8 ~20 µs (instruction
floor ~14 µs); N = 16 ~30 µs (floor ~28 µs); N = 32-64 no better than the bitmap kernel.
"""
from __future__ import annotations

import sys
import time

import torch
from triton.testing import do_bench

import sgk
from sgk.bench.bandwidth import read_kernel_launcher
from sgk.kernels import spmm as kspmm
from sgk.testing import relative_error

import _probe
from _probe import log

T0 = time.time()
TOL_BF16 = 2e-2


def bench(fn, rep=20):
    return float(do_bench(fn, warmup=5, rep=rep, return_mode="median"))


# -- DRAM read and copy bandwidth ------------------------------------------------------------------
def bw(rows, budget):
    numel = 2 * 2**30 // 4
    x = torch.randn(numel, device="cuda")
    for block, warps, per_sm in ((4096, 8, 4), (2048, 4, 8)):
        fn, out = read_kernel_launcher(x, block, warps, per_sm)
        fn()
        got = out.double().sum()
        want = x.double().sum()
        ok = abs(float(got - want)) <= 1e-3 * float(x.abs().double().sum())
        ms = bench(fn, rep=50) if ok else None
        log(rows, section="bw", what="read", gb=numel * 4 / 1e9, block=block, warps=warps, ok=ok, ms=ms,
            tbps=numel * 4 / ms / 1e9 if ms else None)
    y = torch.empty_like(x)
    ms = bench(lambda: y.copy_(x), rep=50)
    log(rows, section="bw", what="copy (read + write)", gb=numel * 8 / 1e9, ms=ms, tbps=numel * 8 / ms / 1e9)
    w = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = bench(lambda: w @ w, rep=50)
    log(rows, section="bw", what="bf16 matmul 8192^3", ms=ms, tflops=2 * 8192**3 / ms / 1e9)


# -- decode shapes -----------------------------------------------------------------------------------
WEIGHTS = [(8192, 8192), (4096, 14336), (14336, 4096)]
NS = [1, 8, 16, 32, 64]


def flat_grid(n: int) -> list[kspmm.SpmmConfig]:
    """The library's flat candidates plus neighbours (rows, unroll, warps). (At a9ab572 the grid also
    ran the kernel without its prefetch of the next step's index/value loads: within ±5%, removed.)"""
    bn = 1 << max(0, (n - 1).bit_length())
    shapes = {1: [(8, 128, 4), (4, 128, 4), (16, 64, 4), (4, 256, 4), (8, 64, 2), (16, 128, 8), (2, 256, 2), (8, 256, 8)],
              8: [(4, 64, 1), (8, 64, 2), (4, 128, 4), (8, 32, 1), (2, 64, 1), (16, 32, 2), (8, 128, 4)],
              16: [(4, 32, 1), (8, 32, 1), (2, 64, 1), (4, 64, 2), (16, 16, 1), (8, 64, 4), (4, 32, 2)],
              32: [(4, 16, 4), (2, 32, 4), (4, 32, 4), (2, 16, 1), (1, 32, 1), (8, 16, 4)],
              64: [(1, 32, 4), (2, 16, 4), (2, 32, 4), (1, 16, 1), (1, 64, 4)]}[bn]
    grid = [kspmm._f(r, k, bn, w) for r, k, w in shapes[:3]]
    grid += [kspmm._f(r, k, bn, w, split_k=4) for r, k, w in shapes[:1]]
    # since 4604663: the same shapes reading two entries to a 32-bit load (half as many slots a step);
    # since this commit, four to a 64-bit load (a quarter as many)
    grid += [kspmm._f(r, max(1, k // 2), bn, w, pack=2) for r, k, w in shapes]
    grid += [kspmm._f(r, max(1, k // 4), bn, w, pack=4) for r, k, w in shapes]
    grid += [kspmm._f(r, max(1, k // 2), bn, w, pack=4) for r, k, w in shapes[:3]]  # the same entries a step as pairs'
    grid += [c for c in kspmm._flat(n, True, packed=True) if c.pack > 1]
    return list(dict.fromkeys(grid))


def bitmap_grid(n: int) -> list[kspmm.SpmmConfig]:
    """Bitmap shapes with and without the value loads along the words' bits (since 4b47793)."""
    bn = max(16, 1 << max(0, (n - 1).bit_length()))
    shapes = [(64, 128, 4, 3, 0), (128, 128, 8, 3, 0), (64, 64, 4, 4, 0), (64, 128, 4, 4, 0)] if n <= 32 else \
        [(64, 256, 4, 3, 0), (64, 256, 8, 3, 0), (64, 256, 8, 3, 1), (64, 128, 4, 3, 0), (64, 128, 4, 3, 1)]
    return [kspmm._b(bm, bk, bn, w, st, sk, coalesce=co) for bm, bk, w, st, sk in shapes for co in (False, True)]


def _run_cfg(a, x, cfg):
    t = a.topology
    return kspmm.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, x, config=cfg, row_bounds=t.row_bounds,
                      column_indices16=t.column_indices16, bitmap=t.bitmap if cfg.kind == "bitmap" else None)


def decode(rows, budget):
    g = torch.Generator().manual_seed(31)
    cases = [(s, m, k) for s in (0.8,) for m, k in WEIGHTS] + [(s, 8192, 8192) for s in (0.5, 0.95)]
    for sparsity, m, k in cases:
        a = sgk.CSRMatrix.random(m, k, sparsity, dtype=torch.bfloat16, generator=g).cuda()
        w = a.to_dense()
        t = a.topology
        t.prepare(bitmap=True)
        csr_bytes = a.nnz * 4 + (m + 1) * 4  # bf16 values, int16 indices, row offsets
        for n in NS:
            if time.time() - T0 > budget:
                return
            x = torch.randn(k, n, generator=g).cuda().bfloat16()
            ref = w.double() @ x.double()
            t_cublas = bench(lambda: w @ x)
            old = [c for c in kspmm.candidates(m, n, a.nnz, torch.bfloat16, compact=True) if c.kind != "flat"]
            flat_only = [c for c in kspmm.candidates(m, n, a.nnz, torch.bfloat16, compact=True) if c.kind == "flat"]
            old += kspmm.bitmap_candidates(n) + bitmap_grid(n)
            res = {}
            for cfg in list(dict.fromkeys(old + flat_only + flat_grid(n))):
                try:
                    e = relative_error(_run_cfg(a, x, cfg), ref)
                    ms = bench(lambda: _run_cfg(a, x, cfg)) if e < TOL_BF16 else None
                except Exception as ex:  # noqa: BLE001 (recorded)
                    e, ms = None, f"{type(ex).__name__}: {str(ex)[:200]}"
                res[str(cfg)] = (ms, e, cfg.kind)
            # the library as a user calls it (tuner over every family)
            out = sgk.spmm(a, x)
            err = relative_error(out, ref)
            t_sgk = bench(lambda: sgk.spmm(a, x)) if err < TOL_BF16 else None
            chosen = str(kspmm.last_config)

            def best(kinds):
                timed = {kk: v[0] for kk, v in res.items() if isinstance(v[0], float) and v[2] in kinds}
                b = min(timed, key=timed.get) if timed else None
                return b, (timed[b] if b else None)

            bo, bo_ms = best(("tile", "1d", "bitmap"))
            bb, bb_ms = best(("bitmap",))
            bf, bf_ms = best(("flat",))
            timed_pairs = {kk: v[0] for kk, v in res.items() if isinstance(v[0], float) and "pack=2" in kk}
            bpair = min(timed_pairs, key=timed_pairs.get) if timed_pairs else None
            timed_quads = {kk: v[0] for kk, v in res.items() if isinstance(v[0], float) and "pack=4" in kk}
            bquad = min(timed_quads, key=timed_quads.get) if timed_quads else None
            byts = csr_bytes + k * n * 2 + m * n * 2
            log(rows, section="decode", m=m, k=k, n=n, sparsity=sparsity, nnz=a.nnz, cublas_bf16_ms=t_cublas,
                best_old=bo, best_old_ms=bo_ms, best_flat=bf, best_flat_ms=bf_ms, best_pairs=bpair,
                best_pairs_ms=timed_pairs.get(bpair), best_quads=bquad, best_quads_ms=timed_quads.get(bquad),
                best_bitmap=bb, best_bitmap_ms=bb_ms, sgk_ms=t_sgk, sgk_err=err,
                sgk_config=chosen, flat_over_old=bo_ms / bf_ms if bo_ms and bf_ms else None,
                flat_over_cublas=t_cublas / bf_ms if bf_ms else None, sgk_over_cublas=t_cublas / t_sgk if t_sgk else None,
                bytes=byts, flat_tbps=byts / bf_ms / 1e9 if bf_ms else None, configs=res)


SECTIONS = {"bw": bw, "decode": decode}


def _summary(r) -> str | None:
    if r["section"] == "bw":
        return f"{r['what']}: {r.get('tbps') or 0:.2f} TB/s {r.get('tflops') or ''}"
    f = lambda v: f"{v * 1e3:6.1f}" if v else "   nan"  # noqa: E731
    return (f"{r['m']}x{r['k']} s={r['sparsity']} N={r['n']:>2}: cublas {f(r['cublas_bf16_ms'])} old {f(r['best_old_ms'])} "
            f"bitmap {f(r.get('best_bitmap_ms'))} "
            f"flat {f(r['best_flat_ms'])} sgk {f(r['sgk_ms'])} us | flat/cublas x{r['flat_over_cublas'] or 0:.2f} "
            f"sgk/cublas x{r['sgk_over_cublas'] or 0:.2f} {r['flat_tbps'] or 0:.2f} TB/s | {r['best_flat']}")


def main(argv=None) -> int:
    return _probe.run("probe_decode", __doc__, SECTIONS, _summary, argv, budget=420.0, t0=T0)

if __name__ == "__main__":
    sys.exit(main())
