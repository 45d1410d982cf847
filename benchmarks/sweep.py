"""Configuration sweep for the SpMM / SDDMM / softmax kernels on a GPU (one device call).

Checks every op in every dtype against a float64 reference first, then times a grid of kernel
configurations on representative shapes (DLMC-like, the anchors' FFN shape, decode and attention
shapes), with cuBLAS and cuSPARSE measured in the same run. Prints a short table last and writes
everything to $OUT/sweep.json (or ./sweep.json).

    PYTHONPATH=src python benchmarks/sweep.py [--budget SECONDS] [--only spmm,sddmm,softmax]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import time

import torch
import triton
from triton.testing import do_bench

import sgk
from sgk.kernels import sddmm as ksddmm
from sgk.kernels import softmax as ksoftmax
from sgk.kernels import spmm as kspmm
from sgk.ops import reference as R
from sgk.testing import relative_error

DT = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {"fp32": 1e-4, "fp16": 5e-3, "bf16": 2e-2}
T0 = time.time()


def bench(fn, rep=30):
    return do_bench(fn, warmup=10, rep=rep, return_mode="median")


def left(budget):
    return budget - (time.time() - T0)


def correctness(log):
    """Every op, every dtype, batched, bias+relu, backward: vs float64 reference on the GPU."""
    g = torch.Generator().manual_seed(1)
    rows = []
    for name, dt in DT.items():
        a = sgk.CSRMatrix.random(1000, 700, 0.9, distribution="skewed", row_cv=0.6, dtype=dt, generator=g, batch_shape=(3,)).cuda()
        b = torch.randn(3, 700, 131, device="cuda", dtype=dt)
        bias = torch.randn(1000, device="cuda", dtype=dt)
        c = sgk.spmm(a, b, bias=bias, activation="relu")
        ref = R.spmm(a.to(torch.float64), b.double(), bias.double(), "relu")
        rows.append((f"spmm {name}", relative_error(c, ref)))
        x = torch.randn(3, 1000, 96, device="cuda", dtype=dt)
        y = torch.randn(700, 96, device="cuda", dtype=dt)
        s = sgk.sddmm(x, y, a)
        rows.append((f"sddmm {name}", relative_error(s.values, R.sddmm(x.double(), y.double(), a))))
        sm = sgk.sparse_softmax(a, scale=0.3)
        rows.append((f"softmax {name}", relative_error(sm.values, R.sparse_softmax(a.to(torch.float64), 0.3))))
        # backward of spmm
        v = a.values.detach().clone().requires_grad_()
        bb = b.detach().clone().requires_grad_()
        out = sgk.spmm(a.with_values(v), bb)
        gr = torch.randn_like(out)
        out.backward(gr)
        v64 = a.values.detach().double().requires_grad_()
        b64 = b.detach().double().requires_grad_()
        sgk.spmm(a.with_values(v64), b64, method="reference").backward(gr.double())
        rows.append((f"spmm dvalues {name}", relative_error(v.grad, v64.grad)))
        rows.append((f"spmm db {name}", relative_error(bb.grad, b64.grad)))
    ok = True
    for n, e in rows:
        dt = n.split()[-1]
        good = e < TOL[dt] * (3 if "d" in n.split()[1][:2] else 1)
        ok &= good
        log.append({"check": n, "rel_err": e, "ok": good})
        print(f"check {n:24s} rel_err={e:.2e} {'ok' if good else 'FAIL'}", flush=True)
    return ok


SPMM_SHAPES = [
    # name, m, k, n, sparsity, distribution, row_cv, sputnik32_ms, sputnik16_ms (anchors where known)
    ("ffn4096x1024_n4096_s0.9", 4096, 1024, 4096, 0.9, "uniform", 0.0, 0.472, 0.267),
    ("ffn4096x1024_n4096_s0.7", 4096, 1024, 4096, 0.7, "uniform", 0.0, 1.070, 0.790),
    ("ffn4096x1024_n4096_s0.98", 4096, 1024, 4096, 0.98, "uniform", 0.0, 0.199, 0.070),
    ("tr2048x512_n2048_s0.9", 2048, 512, 2048, 0.9, "skewed", 0.25, None, None),
    ("tr512x512_n256_s0.9", 512, 512, 256, 0.9, "skewed", 0.4, None, None),
    ("rn512x2048_n196_s0.8", 512, 2048, 196, 0.8, "skewed", 0.3, None, None),
    ("rn256x2304_n3136_s0.9", 256, 2304, 3136, 0.9, "skewed", 0.3, None, None),
    ("rn2048x512_n49_s0.9", 2048, 512, 49, 0.9, "skewed", 0.3, None, None),
    ("dec8192x8192_n16_s0.8", 8192, 8192, 16, 0.8, "uniform", 0.0, None, 0.198),
]


def spmm_configs(n_sample, seed=0):
    space = []
    for rows, bk, bn, w, st in itertools.product((1, 2, 4, 8), (4, 8, 16, 32), (32, 64, 128, 256), (1, 2, 4, 8), (1, 2, 3)):
        elems = rows * bk * bn
        threads = 32 * w
        if elems > 64 * threads or elems < threads:
            continue
        space.append(kspmm.SpmmConfig(rows, bk, bn, w, st))
    rnd = random.Random(seed)
    rnd.shuffle(space)
    return space[:n_sample]


def baselines_spmm(a, b, dt):
    out = {}
    dense = a.to_dense()
    torch.backends.cuda.matmul.allow_tf32 = False
    d32, b32 = dense.float(), b.float()
    out["cublas32"] = bench(lambda: d32 @ b32)
    torch.backends.cuda.matmul.allow_tf32 = True
    out["cublas_tf32"] = bench(lambda: d32 @ b32)
    torch.backends.cuda.matmul.allow_tf32 = False
    d16, b16 = dense.bfloat16(), b.bfloat16()
    out["cublas_bf16"] = bench(lambda: d16 @ b16)
    sp = a.to(torch.float32).to_torch()
    out["cusparse32"] = bench(lambda: sp @ b32)
    return out


def sweep_spmm(log, budget, n_cfg):
    g = torch.Generator().manual_seed(2)
    cfgs = spmm_configs(n_cfg)
    summary = []
    for (name, m, k, n, s, dist, cv, sp32, sp16) in SPMM_SHAPES:
        for dname in ("fp32", "fp16"):
            if name.startswith("dec") and dname == "fp32":
                continue
            if left(budget) < 60:
                print("budget: stopping spmm sweep", flush=True)
                return summary
            dt = DT[dname]
            a = sgk.CSRMatrix.random(m, k, s, distribution=dist, row_cv=max(cv, 0.01), dtype=dt, generator=g).cuda()
            b = torch.randn(k, n, device="cuda", dtype=dt)
            ref = a.to_dense().double() @ b.double()
            base = baselines_spmm(a, b, dt)
            args = (a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], b[None], None, False)
            bounds = a.topology.row_bounds
            default = kspmm.default_config(m, n, a.nnz)
            results = []
            for cfg in [default] + cfgs:
                try:
                    c = kspmm.spmm(*args, config=cfg, row_bounds=bounds)[0]
                    err = relative_error(c, ref)
                    if not err < TOL[dname]:
                        results.append((cfg, None, err))
                        continue
                    t = bench(lambda: kspmm.spmm(*args, config=cfg, row_bounds=bounds), rep=20)
                    results.append((cfg, t, err))
                except Exception as exc:  # out of resources etc.
                    results.append((cfg, None, str(exc)[:80]))
            timed = [r for r in results if r[1] is not None]
            best = min(timed, key=lambda r: r[1])
            t_def = results[0][1]
            flops = 2 * a.nnz * n
            sput = sp32 if dname == "fp32" else sp16
            row = {
                "shape": name, "dtype": dname, "m": m, "k": k, "n": n, "nnz": a.nnz,
                "best_ms": best[1], "best_cfg": best[0].__dict__, "default_ms": t_def, "default_cfg": default.__dict__,
                "best_tflops": flops / best[1] / 1e9, **base, "sputnik_anchor_ms": sput,
                "all": [(r[0].__dict__, r[1], r[2] if isinstance(r[2], str) else float(r[2])) for r in results],
            }
            summary.append(row)
            log.append(row)
            print(
                f"spmm {name:26s} {dname} best {best[1]:.4f} ms {row['best_tflops']:.1f} TF/s cfg={best[0].__dict__} "
                f"default {t_def if t_def is None else round(t_def, 4)} | cublas32 {base['cublas32']:.4f} tf32 {base['cublas_tf32']:.4f} "
                f"bf16 {base['cublas_bf16']:.4f} cusparse {base['cusparse32']:.4f} sputnik {sput}",
                flush=True,
            )
            del a, b, ref
            torch.cuda.empty_cache()
    return summary


SDDMM_SHAPES = [
    # name, m, k, d, sparsity, distribution, sputnik_ms
    ("wg512x512_n2048_s0.9", 512, 512, 2048, 0.9, "skewed", None),
    ("wg2048x512_n2048_s0.8", 2048, 512, 2048, 0.8, "skewed", None),
    ("att4096_d64_s0.9", 4096, 4096, 64, 0.9, "uniform", 0.107),
    ("att16384_d128_s0.95", 16384, 16384, 128, 0.95, "uniform", 1.653),
]


def sweep_sddmm(log, budget, n_cfg):
    g = torch.Generator().manual_seed(3)
    space = [
        ksddmm.SddmmConfig(nz, bd, w, st)
        for nz, bd, w, st in itertools.product((8, 16, 32, 64, 128), (16, 32, 64, 128), (1, 2, 4, 8), (1, 2, 3))
        if 32 * w <= nz * bd <= 64 * 32 * w
    ]
    random.Random(1).shuffle(space)
    space = space[:n_cfg]
    summary = []
    for (name, m, k, d, s, dist, sput) in SDDMM_SHAPES:
        for dname in ("fp32", "bf16"):
            if left(budget) < 40:
                print("budget: stopping sddmm sweep", flush=True)
                return summary
            dt = DT[dname]
            a = sgk.CSRMatrix.random(m, k, s, distribution=dist, row_cv=0.3, dtype=dt, generator=g).cuda()
            x = torch.randn(m, d, device="cuda", dtype=dt)
            y = torch.randn(k, d, device="cuda", dtype=dt)
            ref = R.sddmm(x.double(), y.double(), a) if a.nnz * d < 2e8 else None
            if ref is None:
                rows_ = a.row_indices.long()[:200000]
                cols_ = a.column_indices.long()[:200000]
                ref_part = (x.double()[rows_] * y.double()[cols_]).sum(-1)
            base = {}
            if dname == "fp32":
                sp = a.to(torch.float32).to_torch()
                base["cusparse32"] = bench(lambda: torch.sparse.sampled_addmm(sp, x, y.T, beta=0.0))
                torch.backends.cuda.matmul.allow_tf32 = False
                base["dense32"] = bench(lambda: x @ y.T)
            xb, yb = x.bfloat16(), y.bfloat16()
            base["dense_bf16"] = bench(lambda: xb @ yb.T)
            args = (a.row_offsets, a.column_indices, a.row_swizzle, x[None], y[None])
            default = ksddmm.default_config(d, a.nnz / m)
            results = []
            for cfg in [default] + space:
                try:
                    out = ksddmm.sddmm(*args, config=cfg)[0]
                    err = relative_error(out, ref) if ref is not None else relative_error(out[:200000], ref_part)
                    if not err < TOL[dname]:
                        results.append((cfg, None, err))
                        continue
                    t = bench(lambda: ksddmm.sddmm(*args, config=cfg), rep=20)
                    results.append((cfg, t, err))
                except Exception as exc:
                    results.append((cfg, None, str(exc)[:80]))
            timed = [r for r in results if r[1] is not None]
            best = min(timed, key=lambda r: r[1])
            row = {"shape": name, "dtype": dname, "nnz": a.nnz, "d": d, "best_ms": best[1], "best_cfg": best[0].__dict__,
                   "default_ms": results[0][1], **base, "sputnik_anchor_ms": sput,
                   "all": [(r[0].__dict__, r[1], r[2] if isinstance(r[2], str) else float(r[2])) for r in results]}
            summary.append(row)
            log.append(row)
            print(f"sddmm {name:24s} {dname} best {best[1]:.4f} ms cfg={best[0].__dict__} default {results[0][1]} {base} sputnik {sput}", flush=True)
            del a, x, y
            torch.cuda.empty_cache()
    return summary


def softmax_bw(log):
    g = torch.Generator().manual_seed(4)
    res = []
    for (L, s, heads) in ((4096, 0.9, 8), (12288, 0.95, 8)):
        a = sgk.CSRMatrix.random(L, L, s, dtype=torch.bfloat16, generator=g).cuda()
        v = torch.randn(heads, a.nnz, device="cuda", dtype=torch.bfloat16)
        x = v.reshape(heads, -1)
        fwd = bench(lambda: ksoftmax.softmax(a.row_offsets, a.row_swizzle, x, 0.125))
        y = ksoftmax.softmax(a.row_offsets, a.row_swizzle, x, 0.125)
        gr = torch.randn_like(y)
        bwd = bench(lambda: ksoftmax.softmax_backward(a.row_offsets, a.row_swizzle, y, gr, 0.125))
        copy = bench(lambda: x.clone())
        nbytes = x.numel() * 2
        row = {"L": L, "sparsity": s, "heads": heads, "fwd_ms": fwd, "bwd_ms": bwd, "copy_ms": copy,
               "fwd_GBps": 2 * nbytes / fwd / 1e6, "bwd_GBps": 3 * nbytes / bwd / 1e6, "copy_GBps": 2 * nbytes / copy / 1e6}
        res.append(row)
        log.append(row)
        print(f"softmax L={L} s={s} h={heads}: fwd {fwd:.4f} ms ({row['fwd_GBps']:.0f} GB/s) bwd {bwd:.4f} ms "
              f"({row['bwd_GBps']:.0f} GB/s) copy {row['copy_GBps']:.0f} GB/s", flush=True)
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=float, default=500)
    p.add_argument("--only", default="check,spmm,sddmm,softmax")
    p.add_argument("--spmm-configs", type=int, default=48)
    p.add_argument("--sddmm-configs", type=int, default=32)
    args = p.parse_args()
    only = args.only.split(",")
    out_dir = os.environ.get("OUT", ".")
    log: list = []
    env = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__}
    print(env, flush=True)
    ok = correctness(log) if "check" in only else True
    spmm = sweep_spmm(log, args.budget, args.spmm_configs) if "spmm" in only else []
    sddmm = sweep_sddmm(log, args.budget, args.sddmm_configs) if "sddmm" in only else []
    smx = softmax_bw(log) if "softmax" in only and left(args.budget) > 20 else []
    with open(os.path.join(out_dir, "sweep.json"), "w") as f:
        json.dump({"env": env, "log": log}, f, indent=1, default=str)
    print("\n== summary ==")
    print(f"correctness: {'all ok' if ok else 'FAILURES'}")
    for r in spmm:
        sp = r["sputnik_anchor_ms"]
        print(f"spmm  {r['shape']:26s} {r['dtype']} best {r['best_ms']:.4f} ({r['best_tflops']:.1f} TF/s) "
              f"cusparse/x {r['cusparse32'] / r['best_ms']:.2f} cublas32/x {r['cublas32'] / r['best_ms']:.2f} "
              f"bf16/x {r['cublas_bf16'] / r['best_ms']:.2f}" + (f" sputnik {sp}" if sp else "")
              + f" cfg {tuple(r['best_cfg'].values())}")
    for r in sddmm:
        print(f"sddmm {r['shape']:24s} {r['dtype']} best {r['best_ms']:.4f} default {r['default_ms']} "
              f"cusparse {r.get('cusparse32')} sputnik {r['sputnik_anchor_ms']} cfg {tuple(r['best_cfg'].values())}")
    print(f"elapsed {time.time() - T0:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
