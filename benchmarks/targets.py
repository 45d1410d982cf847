"""The issues' single-shape targets that ``sgk bench`` suites do not cover, in one device call.

* SpMM efficiency: M=4096, K=1024, N=4096, 90% uniform, fp32/fp16/bf16 (useful TFLOP/s, share of
  fp32 peak, vs cuSPARSE, cuBLAS, the Sputnik anchor).
* SpMM backward: dB = Aᵀ·dC (through the cached transpose) against the forward, same matrix and
  dtype, on the FFN shape and on DLMC-like Transformer shapes.
* Attention-shaped SDDMM: L=16384, d=128, 95% (uniform), fp32 and bf16, vs cuSPARSE.
* Sparse softmax forward/backward: achieved bandwidth on the bytes they must move, against a device
  copy measured in the same run.

Every timed output is checked against a float64 reference first (on a sample of rows where the full
reference would not fit). Prints a short table last and writes ``$OUT/targets.json`` (or
``--out``) with provenance.

    PYTHONPATH=src python benchmarks/targets.py [--only spmm,backward,sddmm,softmax] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from triton.testing import do_bench

import sgk
from sgk.bench.env import collect_environment
from sgk.kernels import softmax as ksoftmax
from sgk.testing import relative_error

DT = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {"fp32": 1e-4, "fp16": 5e-3, "bf16": 2e-2}
FP32_PEAK_TFLOPS = 66.9  # 132 SMs x 128 lanes x 2 flops x 1.98 GHz
SPUTNIK_FFN = {"fp32": 0.472, "fp16": 0.267, "bf16": 0.267}  # ../shared/anchors/README.md, 90% row


def bench(fn, rep=50):
    return float(do_bench(fn, warmup=10, rep=rep, return_mode="median"))


def _row(rows, **r):
    rows.append(r)
    print(json.dumps(r), flush=True)


def spmm_efficiency(rows):
    g = torch.Generator().manual_seed(11)
    a32 = sgk.CSRMatrix.random(4096, 1024, 0.9, generator=g).cuda()
    b32 = torch.randn(1024, 4096, generator=g).cuda()
    ref = a32.to_dense().double() @ b32.double()
    torch.backends.cuda.matmul.allow_tf32 = False
    dense = a32.to_dense()
    t_cublas = bench(lambda: dense @ b32)
    sp = a32.to_torch()
    t_cusparse = bench(lambda: sp @ b32)
    dense16 = dense.bfloat16()
    b16 = b32.bfloat16()
    t_bf16 = bench(lambda: dense16 @ b16)
    for name, dt in DT.items():
        a, b = a32.to(dtype=dt), b32.to(dt)
        ref_dt = a.to(dtype=torch.float64).to_dense() @ b.double() if dt != torch.float32 else ref
        err = relative_error(sgk.spmm(a, b), ref_dt)
        ms = bench(lambda: sgk.spmm(a, b)) if err < TOL[name] else None
        tflops = 2 * a.nnz * 4096 / ms / 1e9 if ms else None
        _row(rows, target="spmm_ffn_90", dtype=name, ms=ms, rel_err=err, tflops=tflops,
             share_fp32_peak=tflops / FP32_PEAK_TFLOPS if tflops else None, cusparse32_ms=t_cusparse,
             cublas32_ms=t_cublas, cublas_bf16_ms=t_bf16, sputnik_anchor_ms=SPUTNIK_FFN[name],
             over_cusparse=t_cusparse / ms if ms else None, over_cublas32=t_cublas / ms if ms else None,
             over_sputnik_est=(t_cusparse / ms) / (0.789 / SPUTNIK_FFN[name]) if ms and name == "fp32" else None)


BACKWARD_SHAPES = [("ffn4096x1024_n4096_s0.9", 4096, 1024, 4096, 0.9), ("tr2048x512_n2048_s0.9", 2048, 512, 2048, 0.9),
                   ("tr512x2048_n2048_s0.9", 512, 2048, 2048, 0.9), ("tr512x512_n256_s0.9", 512, 512, 256, 0.9)]


def spmm_backward(rows):
    g = torch.Generator().manual_seed(12)
    for shape, m, k, n, s in BACKWARD_SHAPES:
        for name in ("fp32", "bf16"):
            dt = DT[name]
            a = sgk.CSRMatrix.random(m, k, s, distribution="skewed", row_cv=0.3, dtype=dt, generator=g).cuda()
            b = torch.randn(k, n, generator=g).cuda().to(dt)
            dc = torch.randn(m, n, generator=g).cuda().to(dt)
            at = a.t()
            at.topology.prepare()
            err_f = relative_error(sgk.spmm(a, b), a.to(dtype=torch.float64).to_dense() @ b.double())
            err_b = relative_error(sgk.spmm(at, dc), a.to(dtype=torch.float64).to_dense().T @ dc.double())
            fwd = bench(lambda: sgk.spmm(a, b))
            bwd_db = bench(lambda: sgk.spmm(at, dc))
            bwd_dv = bench(lambda: sgk.sddmm(dc, b, a))  # d(values)[i,j] = dC[i,:]·B[j,:] at A's pattern
            _row(rows, target="spmm_backward", shape=shape, dtype=name, fwd_ms=fwd, db_ms=bwd_db, dvalues_ms=bwd_dv,
                 db_over_fwd=bwd_db / fwd, rel_err_fwd=err_f, rel_err_db=err_b)


def sddmm_attention(rows):
    g = torch.Generator().manual_seed(13)
    L, d, s = 16384, 128, 0.95
    topo = sgk.CSRMatrix.random(L, L, s, generator=g).cuda()
    x32 = torch.randn(L, d, generator=g).cuda()
    y32 = torch.randn(L, d, generator=g).cuda()
    sel = torch.randint(0, topo.nnz, (200_000,), generator=g).cuda()
    ri, ci = topo.row_indices.long()[sel], topo.column_indices.long()[sel]
    sp = topo.to_torch()
    t_cusparse = bench(lambda: torch.sparse.sampled_addmm(sp, x32, y32.T, beta=0.0))
    torch.backends.cuda.matmul.allow_tf32 = False
    t_dense = bench(lambda: x32 @ y32.T)
    for name in ("fp32", "bf16"):
        dt = DT[name]
        p, x, y = topo.to(dtype=dt), x32.to(dt), y32.to(dt)
        ref = (x.double()[ri] * y.double()[ci]).sum(-1)
        err = relative_error(sgk.sddmm(x, y, p).values[sel], ref)
        ms = bench(lambda: sgk.sddmm(x, y, p)) if err < TOL[name] else None
        _row(rows, target="sddmm_attention_L16384_d128_s0.95", dtype=name, ms=ms, rel_err=err, cusparse32_ms=t_cusparse,
             dense32_ms=t_dense, sputnik_anchor_ms=1.653, goal_ms=1.1, over_cusparse=t_cusparse / ms if ms else None)


def softmax_bandwidth(rows):
    g = torch.Generator().manual_seed(14)
    for L, s, heads in ((4096, 0.9, 8), (12288, 0.95, 8), (16384, 0.95, 16)):
        topo = sgk.CSRMatrix.random(L, L, s, generator=g).cuda()
        for name in ("fp32", "bf16"):
            dt = DT[name]
            x = torch.randn(heads, topo.nnz, generator=g).cuda().to(dt)
            a = topo.with_values(x)
            y = sgk.sparse_softmax(a, scale=0.125)
            ref = sgk.sparse_softmax(a.to(dtype=torch.float64), scale=0.125, method="reference")
            err = relative_error(y.values, ref.values)
            gy = torch.randn_like(x)
            fwd = bench(lambda: sgk.sparse_softmax(a, scale=0.125))
            max_row = topo.topology.max_row_length
            bwd = bench(lambda: ksoftmax.softmax_backward(topo.row_offsets, topo.row_swizzle, y.values, gy, 0.125, max_row))
            copy = bench(lambda: x.clone())
            nbytes = x.numel() * x.element_size()
            _row(rows, target="softmax_bandwidth", L=L, sparsity=s, heads=heads, dtype=name, rel_err=err,
                 fwd_ms=fwd, bwd_ms=bwd, copy_ms=copy,
                 fwd_GBps=2 * nbytes / fwd / 1e6, bwd_GBps=3 * nbytes / bwd / 1e6, copy_GBps=2 * nbytes / copy / 1e6,
                 fwd_share_of_copy=(2 * nbytes / fwd) / (2 * nbytes / copy), bwd_share_of_copy=(3 * nbytes / bwd) / (2 * nbytes / copy))


STEPS = {"spmm": spmm_efficiency, "backward": spmm_backward, "sddmm": sddmm_attention, "softmax": softmax_bandwidth}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(STEPS), help=f"comma-separated steps from {','.join(STEPS)}")
    p.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "targets.json"))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("targets.py needs a CUDA GPU", file=sys.stderr)
        return 2
    t0 = time.time()
    rows: list[dict] = []
    for step in args.only.split(","):
        STEPS[step](rows)
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"environment": collect_environment(), "rows": rows}, f, indent=1, default=str)
    print("\n== targets ==")
    for r in rows:
        keys = [k for k in ("dtype", "shape", "L", "ms", "tflops", "share_fp32_peak", "over_cusparse", "over_cublas32",
                            "over_sputnik_est", "db_over_fwd", "fwd_share_of_copy", "bwd_share_of_copy") if r.get(k) is not None]
        print(r["target"], " ".join(f"{k}={r[k]:.3g}" if isinstance(r[k], float) else f"{k}={r[k]}" for k in keys))
    print(f"elapsed {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
