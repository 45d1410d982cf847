"""Hardware counters (Nsight Compute) for the decode-shape SpMM kernels and cuBLAS bf16 on one case.

Tuning runs first, outside the profiled range; then each kernel runs once between
``cudaProfilerStart``/``Stop``. Run under ncu with ``--profile-from-start off``:

    ncu --clock-control none --profile-from-start off --section SpeedOfLight ... \\
        python3 benchmarks/ncu_decode.py [M K SPARSITY N[:METHOD] ...]

``N:bitmap`` (or another ``sgk.spmm`` method) forces that path for that N; plain ``N`` lets the
tuner choose, as a user's call does.
"""
from __future__ import annotations

import sys

import torch

import sgk
from sgk.kernels import spmm as kspmm


def main(argv):
    m, k, s = int(argv[0]), int(argv[1]), float(argv[2])
    cases = [(int(v.split(":")[0]), v.split(":")[1] if ":" in v else "auto") for v in argv[3:]] or [(1, "auto"), (16, "auto")]
    g = torch.Generator().manual_seed(5)
    a = sgk.CSRMatrix.random(m, k, s, dtype=torch.bfloat16, generator=g).cuda()
    a.topology.prepare(bitmap=True)
    w = a.to_dense()
    xs = {n: torch.randn(k, n, generator=g).cuda().bfloat16() for n in dict.fromkeys(n for n, _ in cases)}
    chosen = {}
    for n, method in cases:
        sgk.spmm(a, xs[n], method=method)
        chosen[n, method] = kspmm.last_config
        w @ xs[n]
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for n, method in cases:
        sgk.spmm(a, xs[n], method=method)
        w @ xs[n]
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    for (n, method), c in chosen.items():
        print(f"N={n} {method}: {c}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["8192", "8192", "0.8", "1", "16"])
