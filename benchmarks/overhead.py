"""Host overhead per call on the GPU machine: raw Triton launch, launcher, public op, torch.matmul.

Per-call wall time of N back-to-back calls on a tiny problem (GPU time negligible), then a profile
of the public op. PYTHONPATH=src python benchmarks/overhead.py
"""
import cProfile
import pstats
import time

import torch
import triton

import sgk
from sgk.kernels import spmm as kspmm


def per_call_us(fn, n=2000):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n * 1e6


a = sgk.CSRMatrix.random(64, 64, 0.9, device="cuda")
b = torch.randn(64, 64, device="cuda")
dense = a.to_dense()
vals, bb = a.values[None], b[None]
cfg = kspmm.SpmmConfig(4, 32, 64, 4)  # a tile-kernel configuration, for the raw launch
c = torch.empty(1, 64, 64, device="cuda")
grid = (triton.cdiv(64, cfg.rows), triton.cdiv(64, cfg.block_n), 1)
ro, ci, sw = a.row_offsets, a.column_indices, a.row_swizzle


def raw():
    kspmm._spmm_kernel[grid](ro, ci, sw, vals, bb, c, c, 64, 64, 0, 0, 64, 1, 0, 4096, 64, 1,
                             ROWS=cfg.rows, BLOCK_K=cfg.block_k, BLOCK_N=cfg.block_n, HAS_BIAS=False, RELU=False,
                             num_warps=cfg.num_warps, num_stages=cfg.num_stages)


rows = [
    ("torch.empty", lambda: torch.empty(1, 64, 64, device="cuda")),
    ("torch.matmul dense 64^3", lambda: dense @ b),
    ("triton raw launch", raw),
    ("kernels.spmm launcher", lambda: kspmm.spmm(ro, ci, sw, vals, bb)),
    ("kernels.spmm launcher 2-D", lambda: kspmm.spmm(ro, ci, sw, a.values, b)),
    ("sgk.spmm", lambda: sgk.spmm(a, b)),
]
with torch.no_grad():
    rows.append(("sgk.spmm no_grad", lambda: sgk.spmm(a, b)))
for name, fn in rows:
    print(f"{name:28s} {per_call_us(fn):7.1f} us/call", flush=True)
pr = cProfile.Profile()
pr.enable()
for _ in range(2000):
    sgk.spmm(a, b)
pr.disable()
torch.cuda.synchronize()
pstats.Stats(pr).sort_stats("tottime").print_stats(22)
