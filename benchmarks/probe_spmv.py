"""Device probe (one call): SpMV (N = 1) variants on decode weights — bytes in flight per register.

ncu on the flat kernel at 8192², 80%, N = 1 (benchmarks/results/2026-12-01_h200_a9ab572/ncu.txt):
48% of DRAM bandwidth at 93% occupancy and 32 registers a thread, 76% of stall cycles on global
loads. Each 2-byte index or value load fills a 32-bit register, so the registers cap the bytes in
flight. Variants timed here against the library's flat configurations and cuBLAS bf16:

* ``pair``: indices and values read as 32-bit pairs (two entries a register; the pair holding a
  row's first or last entry is masked per entry), bf16 -> fp32 by shift/mask of the pair, the next
  step's pairs loaded before this step's gathers. Prediction: ~1.5x the bytes in flight at the same
  occupancy -> N = 1, 8192², 80% from ~25 µs device time toward ~17 µs (70% of DRAM).
* flat with one row a program (ROWS = 1: the row bounds are scalars, a few registers freed) and
  long steps. Prediction: within 10% of the best flat configuration.

The pair kernel reads up to one entry past a row's end inside the arrays; at the end of the
arrays it reads the pair holding the last entry only, so the index and value arrays are padded
here to an even length (the probe measures the potential; the library would need that handled).
Every timed output is checked against float64 first. Writes ``$OUT/probe_spmv.json``.
"""
from __future__ import annotations

import json
import os
import sys
import time

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

import sgk
from sgk.bench.env import collect_environment
from sgk.kernels import spmm as kspmm
from sgk.testing import relative_error


@triton.jit
def _spmv_pair_kernel(row_offsets_ptr, idx32_ptr, val32_ptr, row_swizzle_ptr, x_ptr, c_ptr, m, stride_xk,
                      ROWS: tl.constexpr, BLOCK_P: tl.constexpr):
    pid = tl.program_id(0)
    f = tl.arange(0, ROWS * BLOCK_P)
    slot = pid * ROWS + f // BLOCK_P
    ok = slot < m
    rows_f = tl.load(row_swizzle_ptr + slot, mask=ok, other=0)
    first = tl.load(row_offsets_ptr + rows_f, mask=ok, other=0)
    last = tl.load(row_offsets_ptr + rows_f + 1, mask=ok, other=0)
    p = first // 2 + f % BLOCK_P  # pair p holds entries 2p, 2p + 1
    longest = tl.max((last + 1) // 2 - first // 2, axis=0)
    pm = 2 * p < last
    wi = tl.load(idx32_ptr + p, mask=pm, other=0)
    wv = tl.load(val32_ptr + p, mask=pm, other=0)
    acc = tl.zeros([ROWS * BLOCK_P], dtype=tl.float32)
    for s in range(0, longest, BLOCK_P):
        np_ = p + BLOCK_P
        npm = 2 * np_ < last
        nwi = tl.load(idx32_ptr + np_, mask=npm, other=0)
        nwv = tl.load(val32_ptr + np_, mask=npm, other=0)
        e0 = 2 * p
        in0 = (e0 >= first) & (e0 < last)
        in1 = (e0 + 1 >= first) & (e0 + 1 < last)
        c0 = wi & 0xFFFF
        c1 = (wi >> 16) & 0xFFFF
        v0 = tl.where(in0, (wv << 16).to(tl.float32, bitcast=True), 0.0)
        v1 = tl.where(in1, (wv & -65536).to(tl.float32, bitcast=True), 0.0)
        x0 = tl.load(x_ptr + c0 * stride_xk, mask=in0, other=0.0).to(tl.float32)
        x1 = tl.load(x_ptr + c1 * stride_xk, mask=in1, other=0.0).to(tl.float32)
        acc += v0 * x0 + v1 * x1
        p, pm, wi, wv = np_, npm, nwi, nwv
    out = tl.sum(tl.reshape(acc, [ROWS, BLOCK_P]), axis=1)
    rows = tl.load(row_swizzle_ptr + pid * ROWS + tl.arange(0, ROWS), mask=pid * ROWS + tl.arange(0, ROWS) < m, other=0)
    tl.store(c_ptr + rows, out.to(c_ptr.dtype.element_ty), mask=pid * ROWS + tl.arange(0, ROWS) < m)


def bench(fn, rep=25):
    return float(do_bench(fn, warmup=5, rep=rep, return_mode="median"))


def main() -> int:
    out_path = os.path.join(os.environ.get("OUT", "."), "probe_spmv.json")
    g = torch.Generator().manual_seed(41)
    rows = []
    t0 = time.time()
    for sparsity, m, k in [(0.8, 8192, 8192), (0.8, 4096, 14336), (0.8, 14336, 4096), (0.5, 8192, 8192), (0.95, 8192, 8192)]:
        a = sgk.CSRMatrix.random(m, k, sparsity, dtype=torch.bfloat16, generator=g).cuda()
        t = a.topology
        t.prepare()
        x = torch.randn(k, 1, generator=g).cuda().bfloat16()
        w = a.to_dense()
        ref = w.double() @ x.double()
        t_cublas = bench(lambda: w @ x)
        nnz = a.nnz
        pad = nnz % 2
        idx16 = torch.cat([t.column_indices16, t.column_indices16.new_zeros(pad)])
        vals = torch.cat([a.values, a.values.new_zeros(pad)])
        idx32, val32 = idx16.view(torch.int32), vals.view(torch.int32)
        res = {}
        for rw, bp, warps in [(4, 64, 4), (8, 64, 4), (4, 128, 4), (2, 128, 2), (8, 32, 2), (16, 32, 4), (2, 256, 4), (1, 256, 2)]:
            c = torch.full((m,), float("nan"), device="cuda", dtype=torch.bfloat16)
            fn = lambda: _spmv_pair_kernel[(triton.cdiv(m, rw),)](t.row_offsets, idx32, val32, t.row_swizzle, x, c, m,  # noqa: E731
                                                                   x.stride(0), ROWS=rw, BLOCK_P=bp, num_warps=warps)
            fn()
            e = relative_error(c[:, None], ref)
            res[f"pair r{rw} p{bp} w{warps}"] = (bench(fn) if e < 2e-2 else None, e)
        for cfg in kspmm._flat(1, True) + [kspmm.SpmmConfig(1, bk, 1, w_, 1, "flat", 1, True) for bk, w_ in ((512, 4), (1024, 8), (256, 2), (512, 8))]:
            fn = lambda: kspmm.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, x, config=cfg,  # noqa: E731
                                    column_indices16=t.column_indices16)
            e = relative_error(fn(), ref)
            res[f"flat r{cfg.rows} k{cfg.block_k} w{cfg.num_warps}"] = (bench(fn) if e < 2e-2 else None, e)
        timed = {kk: v[0] for kk, v in res.items() if v[0]}
        bp_ = min((kk for kk in timed if kk.startswith("pair")), key=timed.get)
        bf_ = min((kk for kk in timed if kk.startswith("flat")), key=timed.get)
        byts = nnz * 4 + (m + 1) * 4 + k * 2 + m * 2
        r = dict(m=m, k=k, sparsity=sparsity, nnz=nnz, cublas_bf16_ms=t_cublas, best_pair=bp_, best_pair_ms=timed[bp_],
                 best_flat=bf_, best_flat_ms=timed[bf_], bytes=byts, configs=res)
        rows.append(r)
        print(json.dumps(r), flush=True)
    with open(out_path, "w") as fh:
        json.dump({"benchmark": "probe_spmv", "provenance": collect_environment(), "rows": rows, "seconds": time.time() - t0},
                  fh, indent=1, default=str)
    print("\n== probe_spmv ==")
    for r in rows:
        print(f"{r['m']}x{r['k']} s={r['sparsity']}: cublas {r['cublas_bf16_ms'] * 1e3:5.1f} flat {r['best_flat_ms'] * 1e3:5.1f} "
              f"({r['best_flat']}) pair {r['best_pair_ms'] * 1e3:5.1f} ({r['best_pair']}) us | pair/flat x{r['best_flat_ms'] / r['best_pair_ms']:.2f} "
              f"pair/cublas x{r['cublas_bf16_ms'] / r['best_pair_ms']:.2f} {r['bytes'] / r['best_pair_ms'] / 1e9:.2f} TB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
