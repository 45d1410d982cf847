"""Kernel-variant probe (one device call): candidate SpMM / SDDMM kernel designs against the
library's current kernels, with cuBLAS and cuSPARSE in the same run.

Every variant's output is checked against a float64 reference before it is timed. Prints a short
table last and writes everything to $OUT/variants.json.

    PYTHONPATH=src python benchmarks/variants.py [--budget SECONDS]

Variants (notes and predictions in docs/performance.md, "Tuning log"):

* ``cur``: the library's kernel as sgk.spmm / sgk.sddmm runs it (bucketed autotune).
* ``v1`` SpMM: 1-D tiles over N with a 2-D (ROWS × BLOCK_N) accumulator; the nonzeros of a step
  are consumed one at a time in an unrolled loop (scalar-per-row index/value loads that every
  thread of the row shares, as Sputnik reads its shared-memory tile), and padding entries read row
  0 of B with value 0, so the B gather needs no mask over K (and none over N when N divides).
* ``v1`` SDDMM: the row of X is loaded once (the whole feature dimension when it fits a block),
  padding gathers row 0 of Y, no feature mask when d divides.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import torch
import triton
import triton.language as tl
from triton.testing import do_bench

import sgk
from sgk.kernels import sddmm as ksddmm
from sgk.kernels import spmm as kspmm
from sgk.testing import relative_error

DT = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {"fp32": 1e-4, "fp16": 5e-3, "bf16": 2e-2}
T0 = time.time()


@triton.jit
def _spmm_v1(
    row_offsets_ptr, column_indices_ptr, row_swizzle_ptr, values_ptr, b_ptr, c_ptr,
    m, n, stride_bk, stride_cm,
    ROWS: tl.constexpr, UNROLL: tl.constexpr, BLOCK_N: tl.constexpr, EVEN_N: tl.constexpr,
):
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    slot = pid_r * ROWS + tl.arange(0, ROWS)
    row_ok = slot < m
    rows = tl.load(row_swizzle_ptr + slot, mask=row_ok, other=0)
    starts = tl.load(row_offsets_ptr + rows, mask=row_ok, other=0)
    ends = tl.load(row_offsets_ptr + rows + 1, mask=row_ok, other=0)
    longest = tl.max(ends - starts, axis=0)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    b_cols = b_ptr + offs_n
    acc = tl.zeros([ROWS, BLOCK_N], dtype=tl.float32)
    for kk in range(0, longest, UNROLL):
        for j in tl.static_range(UNROLL):
            idx = starts + kk + j
            mk = idx < ends
            col = tl.load(column_indices_ptr + idx, mask=mk, other=0)
            val = tl.load(values_ptr + idx, mask=mk, other=0.0).to(tl.float32)
            ptrs = b_cols[None, :] + col.to(tl.int64)[:, None] * stride_bk
            if EVEN_N:
                bt = tl.load(ptrs).to(tl.float32)
            else:
                bt = tl.load(ptrs, mask=mask_n[None, :], other=0.0).to(tl.float32)
            acc += val[:, None] * bt
    c_ptrs = c_ptr + rows.to(tl.int64)[:, None] * stride_cm + offs_n[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=row_ok[:, None] & mask_n[None, :])


def spmm_v1(a, b, cfg):
    rows, unroll, bn, w, st = cfg
    m, n = a.shape[0], b.shape[1]
    c = torch.empty(m, n, device=b.device, dtype=b.dtype)
    grid = (triton.cdiv(m, rows), triton.cdiv(n, bn))
    _spmm_v1[grid](a.row_offsets, a.column_indices, a.row_swizzle, a.values, b, c, m, n, b.stride(0), c.stride(0),
                   ROWS=rows, UNROLL=unroll, BLOCK_N=bn, EVEN_N=(n % bn == 0), num_warps=w, num_stages=st)
    return c


@triton.jit
def _sddmm_v1(
    row_offsets_ptr, column_indices_ptr, row_swizzle_ptr, x_ptr, y_ptr, out_ptr,
    d, stride_xm, stride_yk,
    BLOCK_NZ: tl.constexpr, BLOCK_D: tl.constexpr, EVEN_D: tl.constexpr,
):
    pid = tl.program_id(0)
    row = tl.load(row_swizzle_ptr + pid)
    start = tl.load(row_offsets_ptr + row)
    end = tl.load(row_offsets_ptr + row + 1)
    offs_d = tl.arange(0, BLOCK_D)
    x_row = x_ptr + row.to(tl.int64) * stride_xm
    if EVEN_D:
        xv = tl.load(x_row + offs_d).to(tl.float32)
    else:
        xv = tl.load(x_row + offs_d, mask=offs_d < d, other=0.0).to(tl.float32)
    for nz in range(start, end, BLOCK_NZ):
        offs = nz + tl.arange(0, BLOCK_NZ)
        mask = offs < end
        cols = tl.load(column_indices_ptr + offs, mask=mask, other=0).to(tl.int64)
        ptrs = y_ptr + cols[:, None] * stride_yk + offs_d[None, :]
        if EVEN_D:
            yt = tl.load(ptrs).to(tl.float32)
        else:
            yt = tl.load(ptrs, mask=offs_d[None, :] < d, other=0.0).to(tl.float32)
        res = tl.sum(yt * xv[None, :], axis=1)
        tl.store(out_ptr + offs, res.to(out_ptr.dtype.element_ty), mask=mask)


def sddmm_v1(x, y, a, cfg):
    bnz, w, st = cfg
    d = x.shape[1]
    bd = triton.next_power_of_2(d)
    out = torch.empty(a.nnz, device=x.device, dtype=x.dtype)
    _sddmm_v1[(a.shape[0],)](a.row_offsets, a.column_indices, a.row_swizzle, x, y, out, d, x.stride(0), y.stride(0),
                             BLOCK_NZ=bnz, BLOCK_D=bd, EVEN_D=(bd == d), num_warps=w, num_stages=st)
    return out


def bench(fn, rep=25):
    return do_bench(fn, warmup=5, rep=rep, return_mode="median")


SPMM_SHAPES = [
    # name, m, k, n, sparsity, distribution, cv, dtypes, sputnik32, sputnik16 (anchors)
    ("ffn4096x1024_n4096_s0.9", 4096, 1024, 4096, 0.9, "uniform", 0.01, ("fp32", "fp16", "bf16"), 0.472, 0.267),
    ("ffn4096x1024_n4096_s0.7", 4096, 1024, 4096, 0.7, "uniform", 0.01, ("fp32", "bf16"), 1.070, 0.790),
    ("tr2048x512_n2048_s0.9", 2048, 512, 2048, 0.9, "skewed", 0.25, ("fp32", "bf16"), 0.079, 0.055),
    ("tr512x512_n256_s0.9", 512, 512, 256, 0.9, "skewed", 0.4, ("fp32", "bf16"), 0.015, 0.016),
    ("rn256x2304_n3136_s0.9", 256, 2304, 3136, 0.9, "skewed", 0.3, ("fp32", "bf16"), 0.101, 0.073),
    ("rn512x2048_n196_s0.8", 512, 2048, 196, 0.8, "skewed", 0.3, ("fp32", "bf16"), 0.060, 0.068),
    ("dec8192_n16_s0.8", 8192, 8192, 16, 0.8, "uniform", 0.01, ("bf16",), None, 0.198),
]

# (rows, unroll, BLOCK_N, warps, stages): warps chosen so each thread holds 4 or 8 elements of a row
V1_GRID = sorted({(r, u, bn, max(1, min(8, r * bn // (32 * epv))), 1)
                  for r, u, bn, epv in itertools.product((1, 2, 4), (4, 8), (32, 64, 128, 256), (4, 8))})


def spmm_probe(log, budget):
    g = torch.Generator().manual_seed(7)
    rows = []
    for name, m, k, n, s, dist, cv, dts, sp32, sp16 in SPMM_SHAPES:
        for dname in dts:
            if time.time() - T0 > budget:
                print("budget: stop", flush=True)
                return rows
            dt = DT[dname]
            a = sgk.CSRMatrix.random(m, k, s, distribution=dist, row_cv=cv, dtype=dt, generator=g).cuda()
            b = torch.randn(k, n, device="cuda", dtype=dt)
            ref = a.to_dense().double() @ b.double()
            base = {}
            dense = a.to_dense()
            torch.backends.cuda.matmul.allow_tf32 = False
            d32, b32 = dense.float(), b.float()
            base["cublas32"] = bench(lambda: d32 @ b32)
            d16, b16 = dense.bfloat16(), b.bfloat16()
            base["cublas_bf16"] = bench(lambda: d16 @ b16)
            sp = a.to(torch.float32).to_torch()
            base["cusparse32"] = bench(lambda: sp @ b32)
            c = sgk.spmm(a, b)
            e = relative_error(c, ref)
            t_cur = bench(lambda: sgk.spmm(a, b)) if e < TOL[dname] else None
            best = (None, float("inf"), None)
            n_bad = 0
            for cfg in V1_GRID:
                if cfg[2] > 2 * triton.next_power_of_2(n):
                    continue
                try:
                    c = spmm_v1(a, b, cfg)
                    err = relative_error(c, ref)
                    if not err < TOL[dname]:
                        n_bad += 1
                        continue
                    t = bench(lambda: spmm_v1(a, b, cfg), rep=10)
                    if t < best[1]:
                        best = (cfg, t, err)
                except Exception as exc:  # noqa: BLE001
                    n_bad += 1
                    log.append({"shape": name, "cfg": cfg, "exc": str(exc)[:200]})
            if best[0] is not None:
                best = (best[0], bench(lambda: spmm_v1(a, b, best[0])), best[2])
            flops = 2 * a.nnz * n
            r = {"op": "spmm", "shape": name, "dtype": dname, "nnz": a.nnz, "cur_ms": t_cur, "cur_err": e,
                 "v1_ms": best[1], "v1_cfg": best[0], "v1_err": best[2], "v1_bad": n_bad, **base,
                 "sputnik_ms": sp32 if dname == "fp32" else sp16, "tflops_best": flops / min(best[1], t_cur or 9e9) / 1e9}
            rows.append(r)
            log.append(r)
            print(json.dumps(r), flush=True)
            del a, b, ref, dense, d32, b32, d16, b16, sp
            torch.cuda.empty_cache()
    return rows


SDDMM_SHAPES = [
    ("att16384_d128_s0.95", 16384, 16384, 128, 0.95, "uniform", ("fp32", "bf16"), 1.653),
    ("att4096_d64_s0.9", 4096, 4096, 64, 0.9, "uniform", ("fp32", "bf16"), 0.107),
    ("wg2048x512_n2048_s0.8", 2048, 512, 2048, 0.8, "skewed", ("fp32",), None),
]


def sddmm_probe(log, budget):
    g = torch.Generator().manual_seed(8)
    rows = []
    for name, m, k, d, s, dist, dts, sput in SDDMM_SHAPES:
        for dname in dts:
            if time.time() - T0 > budget:
                return rows
            dt = DT[dname]
            a = sgk.CSRMatrix.random(m, k, s, distribution=dist, row_cv=0.3, dtype=dt, generator=g).cuda()
            x = torch.randn(m, d, device="cuda", dtype=dt)
            y = torch.randn(k, d, device="cuda", dtype=dt)
            sel = torch.randint(0, a.nnz, (200000,), device="cuda")
            ri, ci = a.row_indices.long()[sel], a.column_indices.long()[sel]
            ref = (x.double()[ri] * y.double()[ci]).sum(-1)
            base = {}
            if dname == "fp32":
                sp = a.to(torch.float32).to_torch()
                base["cusparse32"] = bench(lambda: torch.sparse.sampled_addmm(sp, x, y.T, beta=0.0))
            cur = sgk.sddmm(x, y, a).values
            e = relative_error(cur[sel], ref)
            t_cur = bench(lambda: sgk.sddmm(x, y, a)) if e < TOL[dname] else None
            best = (None, float("inf"), None)
            if d <= 256:
                for cfg in itertools.product((16, 32, 64, 128), (1, 2, 4, 8), (1, 2)):
                    try:
                        o = sddmm_v1(x, y, a, cfg)
                        err = relative_error(o[sel], ref)
                        if not err < TOL[dname]:
                            continue
                        t = bench(lambda: sddmm_v1(x, y, a, cfg), rep=10)
                        if t < best[1]:
                            best = (cfg, t, err)
                    except Exception as exc:  # noqa: BLE001
                        log.append({"shape": name, "cfg": cfg, "exc": str(exc)[:200]})
                if best[0] is not None:
                    best = (best[0], bench(lambda: sddmm_v1(x, y, a, best[0])), best[2])
            r = {"op": "sddmm", "shape": name, "dtype": dname, "nnz": a.nnz, "cur_ms": t_cur, "cur_err": e,
                 "v1_ms": best[1], "v1_cfg": best[0], **base, "sputnik_ms": sput}
            rows.append(r)
            log.append(r)
            print(json.dumps(r), flush=True)
            del a, x, y
            torch.cuda.empty_cache()
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=360)
    args = p.parse_args()
    log: list = []
    env = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__}
    print(env, flush=True)
    rows = spmm_probe(log, args.budget * 0.75)
    rows += sddmm_probe(log, args.budget)
    with open(os.path.join(os.environ.get("OUT", "."), "variants.json"), "w") as f:
        json.dump({"env": env, "log": log}, f, indent=1, default=str)
    print("\n== summary (ms) ==")
    for r in rows:
        sp = r.get("sputnik_ms")
        print(f"{r['op']:5s} {r['shape']:26s} {r['dtype']:4s} cur {r['cur_ms'] or float('nan'):.4f} v1 {r['v1_ms']:.4f} "
              f"{r.get('v1_cfg')} cusparse32 {r.get('cusparse32', float('nan')):.4f} cublas32 {r.get('cublas32', float('nan')):.4f} "
              f"bf16 {r.get('cublas_bf16', float('nan')):.4f} sputnik {sp}")
    print(f"elapsed {time.time() - T0:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
