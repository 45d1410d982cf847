"""Device probe (one call): the bitmap dense-tile SpMM for decode shapes, the L2 and DRAM read
bandwidth that bound the block-sparse kernels, the block-sparse configuration space, and the fp32
SpMM candidates on the backward's transposed problem.

Every timed output is checked against a float64 reference first (bf16/fp32 tolerances as in
benchmarks/targets.py); a configuration that fails the check is recorded and not timed. Baselines
(cuBLAS) are measured in the same run. Writes ``$OUT/probe_tc.json`` (or ``--out``) and prints a
short table last.

    PYTHONPATH=src python benchmarks/probe_tc.py [--only decode,l2,bsr,backward] [--budget SECONDS]

Two later probes of the same session ran sections that were removed with the variants they
measured (both slower; results and the code at their commits): ``prefetch`` (the bitmap kernel
gathering tile k+1 before multiplying tile k, at 0e73a5e; and the [bit, word, row] tile layout at
2f4d1cb) and ``bsr_persistent`` (a persistent block-sparse SpMM, at acebff7).

Predictions, written before the run (docs/performance.md, "Tuning log"):

* decode (bitmap): the kernel decodes every dense element of A (~15-18 SASS instructions each on
  sm_90, from the compiled code), so it is instruction-bound at about the same time for every
  sparsity: ~35-45 µs for 8192², against cuBLAS bf16's ~61 µs at N = 16: 1.3-1.7x, nearly flat
  in N (1-64) and in sparsity (50-95%).
* L2: the block-sparse SpMM with 64-row blocks reads 1 byte of the dense operand per 64 flops; if
  the L2 delivers ~6-7 TB/s, that caps it near 400 TFLOP/s (the measured 50% case: 370).
* bsr: more stages / wider tiles move the 90% (64×64) case by ≤ 15%.
* backward fp32: 2-4 rows per program or a split-K candidate beat one-row strips on the
  transposed FFN problem (1024 rows of ~1640 nonzeros).
"""
from __future__ import annotations

import sys
import time

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

import sgk
from sgk.kernels import bsr as kbsr
from sgk.kernels import spmm as kspmm
from sgk.testing import relative_error

import _probe
from _probe import log

T0 = time.time()
TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2, torch.float16: 5e-3}


def bench(fn, rep=20):
    return float(do_bench(fn, warmup=5, rep=rep, return_mode="median"))


# -- decode: bitmap dense-tile SpMM ------------------------------------------------------------------
DECODE_WEIGHTS = [(8192, 8192), (4096, 14336), (14336, 4096)]
DECODE_N = [1, 8, 16, 32, 64]
BITMAP_GRID = [(64, 128, 4, 3), (64, 128, 4, 4), (64, 256, 4, 3), (64, 256, 8, 3), (128, 64, 4, 3), (128, 128, 4, 3),
               (128, 128, 8, 3), (128, 256, 8, 2), (64, 64, 4, 4), (256, 64, 8, 3)]


def _bitmap_cfg(bm, bk, n, warps, stages, split=0):
    bn = max(16, 1 << max(0, (n - 1).bit_length()))
    return kspmm.SpmmConfig(bm, bk, bn, warps, stages, "bitmap", split)


def _run_cfg(a, x, cfg):
    t = a.topology
    return kspmm.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, x, config=cfg, row_bounds=t.row_bounds,
                      column_indices16=t.column_indices16, bitmap=t.bitmap)


def decode(rows, budget):
    g = torch.Generator().manual_seed(21)
    for sparsity in (0.8, 0.5, 0.95):
        for m, k in DECODE_WEIGHTS:
            a = sgk.CSRMatrix.random(m, k, sparsity, dtype=torch.bfloat16, generator=g).cuda()
            w = a.to_dense()
            t0 = time.time()
            bitmap = a.topology.bitmap
            torch.cuda.synchronize()
            build_s = time.time() - t0
            fmt_bytes = 2 * a.nnz + sum(t.numel() * 4 for t in bitmap)
            for n in DECODE_N:
                if time.time() - T0 > budget:
                    return
                x = torch.randn(k, n, generator=g).cuda().bfloat16()
                ref = w.double() @ x.double()
                t_cublas = bench(lambda: w @ x)
                # the library as a user calls it (tuner over CSR and bitmap candidates)
                out = sgk.spmm(a, x)
                err = relative_error(out, ref)
                t_sgk = bench(lambda: sgk.spmm(a, x)) if err < TOL[torch.bfloat16] else None
                chosen = str(kspmm.last_config)
                grid = BITMAP_GRID if sparsity == 0.8 else BITMAP_GRID[:4] + BITMAP_GRID[5:7]
                results = {}
                for bm, bk, warps, stages in grid:
                    for split in (0, 1):
                        cfg = _bitmap_cfg(bm, bk, n, warps, stages, split)
                        try:
                            e = relative_error(_run_cfg(a, x, cfg), ref)
                            ms = bench(lambda: _run_cfg(a, x, cfg)) if e < TOL[torch.bfloat16] else None
                        except Exception as ex:  # noqa: BLE001 (recorded)
                            e, ms = None, f"{type(ex).__name__}: {str(ex)[:200]}"
                        results[f"{bm}x{bk} w{warps} s{stages} split{'auto' if split == 0 else split}"] = (ms, e)
                timed = {kk: v[0] for kk, v in results.items() if isinstance(v[0], float)}
                best = min(timed, key=timed.get) if timed else None
                best_ms = timed[best] if best else None
                log(rows, section="decode", m=m, k=k, n=n, sparsity=sparsity, nnz=a.nnz, cublas_bf16_ms=t_cublas,
                    sgk_ms=t_sgk, sgk_err=err, sgk_config=chosen, bitmap_best=best, bitmap_best_ms=best_ms,
                    bitmap_over_cublas=t_cublas / best_ms if best_ms else None,
                    sgk_over_cublas=t_cublas / t_sgk if t_sgk else None,
                    bitmap_gbps=fmt_bytes / best_ms / 1e6 if best_ms else None, format_bytes=fmt_bytes,
                    bitmap_build_s=build_s, configs=results)


# -- L2 / DRAM read bandwidth -----------------------------------------------------------------------------
@triton.jit
def _read_kernel(x_ptr, out_ptr, n_blocks, reps, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for r in range(reps):
        for blk in range(pid, n_blocks, nprog):
            acc += tl.load(x_ptr + blk.to(tl.int64) * BLOCK + tl.arange(0, BLOCK))
    tl.store(out_ptr + pid * BLOCK + tl.arange(0, BLOCK), acc)


def l2(rows, budget):
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    for mb, reps in ((8, 64), (16, 32), (24, 24), (32, 16), (2048, 1)):
        numel = mb * 2**20 // 4
        x = torch.randn(numel, device="cuda")
        for block, warps, per_sm in ((4096, 8, 4), (2048, 4, 8)):
            nprog = sms * per_sm
            out = torch.empty(nprog * block, device="cuda")
            n_blocks = numel // block
            fn = lambda: _read_kernel[(nprog,)](x, out, n_blocks, reps, BLOCK=block, num_warps=warps)  # noqa: E731
            fn()
            # check: the sums over programs equal the sum of x, reps times
            got = out.view(nprog, block).double().sum()
            want = x[: n_blocks * block].double().sum() * reps
            ok = abs(float(got - want)) <= 1e-3 * float(x.abs().double().sum() * reps)
            ms = bench(fn, rep=50) if ok else None
            log(rows, section="l2", buffer_mb=mb, reps=reps, block=block, warps=warps, programs=nprog, ok=ok, ms=ms,
                tbps=(n_blocks * block * 4 * reps) / ms / 1e9 if ms else None)


# -- block-sparse configuration space -------------------------------------------------------------------
def bsr(rows, budget):
    n = 4096
    for sparsity, a, b, w, ref in _probe.block_sparse_problems(22, n=n):
        t_cublas = bench(lambda: w @ b)
        t = a.topology
        res = {}
        grid = [(bn, warps, stages) for bn in (64, 128, 256) for warps in (4, 8) for stages in (2, 3, 4, 5)]
        # 64×512 tiles, one m64n256 wgmma a warpgroup (8 warps); 147 KB of shared memory at 2 stages,
        # so one program an SM (not yet timed; the library's candidates stop at 256)
        grid += [(512, 8, 2), (512, 8, 3)]
        for bn, warps, stages in grid:
            if time.time() - T0 > budget:
                break
            cfg = kbsr.BsrSpmmConfig(bn, warps, stages)
            fn = lambda: kbsr.spmm(t.row_offsets, t.column_indices, t.row_swizzle, None, a.values[None], b[None], 4096,  # noqa: E731
                                   config=cfg)
            try:
                e = relative_error(fn()[0], ref)
                ms = bench(fn) if e < TOL[torch.bfloat16] else None
            except Exception as ex:  # noqa: BLE001
                e, ms = None, f"{type(ex).__name__}: {str(ex)[:160]}"
            res[f"bn{bn} w{warps} s{stages}"] = (ms, e)
        timed = {kk: v[0] for kk, v in res.items() if isinstance(v[0], float)}
        best = min(timed, key=timed.get) if timed else None
        flops = 2 * a.nnz * n
        log(rows, section="bsr", sparsity=sparsity, bs=64, n=n, cublas_bf16_ms=t_cublas, best=best,
            best_ms=timed.get(best), best_tflops=flops / timed[best] / 1e9 if best else None,
            over_cublas=t_cublas / timed[best] if best else None, configs=res)


# -- fp32 backward: candidates on the transposed problem ------------------------------------------------
def backward(rows, budget):
    g = torch.Generator().manual_seed(12)
    extra = [kspmm.SpmmConfig(2, 4, 256, 2, 1, "1d"), kspmm.SpmmConfig(4, 4, 256, 4, 1, "1d"),
             kspmm.SpmmConfig(2, 8, 128, 1, 1, "1d"), kspmm.SpmmConfig(1, 4, 128, 1, 1, "1d"),
             kspmm.SpmmConfig(1, 4, 256, 1, 1, "1d", 2), kspmm.SpmmConfig(1, 4, 256, 1, 1, "1d", 4),
             kspmm.SpmmConfig(2, 4, 256, 2, 1, "1d", 2), kspmm.SpmmConfig(1, 8, 256, 2, 1, "1d"),
             kspmm.SpmmConfig(1, 4, 512, 2, 1, "1d"), kspmm.SpmmConfig(1, 4, 256, 1, 2, "1d")]
    for shape, m, k, n, s in (("ffn4096x1024_n4096_s0.9", 4096, 1024, 4096, 0.9), ("tr2048x512_n2048_s0.9", 2048, 512, 2048, 0.9)):
        a = sgk.CSRMatrix.random(m, k, s, distribution="skewed", row_cv=0.3, generator=g).cuda()
        b = torch.randn(k, n, generator=g).cuda()
        dc = torch.randn(m, n, generator=g).cuda()
        at = a.t()
        at.topology.prepare()
        err_f = relative_error(sgk.spmm(a, b), a.to(dtype=torch.float64).to_dense() @ b.double())
        fwd = bench(lambda: sgk.spmm(a, b))
        fwd_cfg = str(kspmm.last_config)
        ref_t = a.to(dtype=torch.float64).to_dense().T @ dc.double()
        tt = at.topology
        res = {}
        for cfg in list(kspmm.candidates(k, n, a.nnz, torch.float32)) + extra:
            fn = lambda: kspmm.spmm(tt.row_offsets, tt.column_indices, tt.row_swizzle, at.values, dc, config=cfg,
                                    row_bounds=tt.row_bounds)  # noqa: E731
            try:
                e = relative_error(fn(), ref_t)
                ms = bench(fn) if e < TOL[torch.float32] else None
            except Exception as ex:  # noqa: BLE001
                e, ms = None, f"{type(ex).__name__}: {str(ex)[:160]}"
            res[str(cfg)] = (ms, e)
        timed = {kk: v[0] for kk, v in res.items() if isinstance(v[0], float)}
        best = min(timed, key=timed.get) if timed else None
        log(rows, section="backward", shape=shape, fwd_ms=fwd, fwd_err=err_f, fwd_config=fwd_cfg, best=best,
            best_ms=timed.get(best), best_over_fwd=timed[best] / fwd if best else None, configs=res)


SECTIONS = {"decode": decode, "l2": l2, "bsr": bsr, "backward": backward}


def _summary(r) -> str | None:
    nan = float("nan")
    if r["section"] == "decode":
        return (f"decode {r['m']}x{r['k']} s={r['sparsity']} N={r['n']:>2}: cublas {r['cublas_bf16_ms']*1e3:6.1f} us  "
                f"bitmap {r['bitmap_best_ms']*1e3 if r['bitmap_best_ms'] else nan:6.1f} us ({r['bitmap_best']})  "
                f"sgk {r['sgk_ms']*1e3 if r['sgk_ms'] else nan:6.1f} us  x{r['sgk_over_cublas'] or 0:.2f}")
    if r["section"] == "l2":
        return f"read {r['buffer_mb']} MB x{r['reps']} block {r['block']} w{r['warps']}: {r['tbps'] or 0:.2f} TB/s"
    if r["section"] == "bsr":
        return (f"bsr 64x64 {r['sparsity']}: cublas {r['cublas_bf16_ms']:.4f} best {r['best_ms'] or 0:.4f} ms ({r['best']}) "
                f"{r['best_tflops'] or 0:.0f} TF/s x{r['over_cublas'] or 0:.2f}")
    if r["section"] == "backward":
        return (f"bwd {r['shape']}: fwd {r['fwd_ms']:.4f} ({r['fwd_config']}) best dB {r['best_ms'] or 0:.4f} ({r['best']}) "
                f"ratio {r['best_over_fwd'] or 0:.2f}")
    return None


def main(argv=None) -> int:
    return _probe.run("probe_tc", __doc__, SECTIONS, _summary, argv, budget=540.0, t0=T0)

if __name__ == "__main__":
    sys.exit(main())
