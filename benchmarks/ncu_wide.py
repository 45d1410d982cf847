"""Hardware counters (Nsight Compute) for bitmap SpMM configurations at wide N and cuBLAS bf16.

Each configuration runs once (and is checked against a float64 product) outside the profiled
range, then once between ``cudaProfilerStart``/``Stop``, followed by cuBLAS on the same operands.
Run under ncu with ``--profile-from-start off``:

    ncu --clock-control none --profile-from-start off --section SpeedOfLight ... \\
        python3 benchmarks/ncu_wide.py M K SPARSITY N CONFIG [CONFIG ...]

CONFIG: ``BMxBKxBNwWARPSsSTAGESkSPLIT`` with an optional ``p`` (prefetch) or ``c`` (coalesce),
e.g. ``64x128x128w4s3k1p``.
"""
from __future__ import annotations

import re
import sys

import torch

import sgk
from sgk.kernels import spmm as kspmm
from sgk.testing import relative_error

_SPEC = re.compile(r"(\d+)x(\d+)x(\d+)w(\d+)s(\d+)k(\d+)([pc]*)$")


def parse(spec: str) -> kspmm.SpmmConfig:
    mt = _SPEC.match(spec)
    if mt is None:
        raise ValueError(f"ncu_wide: configuration {spec!r} is not of the form 64x128x128w4s3k1p")
    bm, bk, bn, w, s, k = (int(v) for v in mt.groups()[:6])
    return kspmm._b(bm, bk, bn, w, s, k, coalesce="c" in mt.group(7), prefetch="p" in mt.group(7))


def main(argv) -> int:
    m, k, sp, n = int(argv[0]), int(argv[1]), float(argv[2]), int(argv[3])
    cfgs = [parse(v) for v in argv[4:]]
    g = torch.Generator().manual_seed(5)
    a = sgk.CSRMatrix.random(m, k, sp, dtype=torch.bfloat16, generator=g).cuda()
    t = a.topology
    t.prepare(bitmap=True)
    w = a.to_dense()
    x = torch.randn(k, n, generator=g).cuda().bfloat16()
    ref = w.double() @ x.double()

    def run(cfg):
        return kspmm.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, x, config=cfg, bitmap=t.bitmap, row_bounds=t.row_bounds)

    for cfg in cfgs:
        err = relative_error(run(cfg), ref)
        print(f"{m}x{k} n={n} {sp}: {cfg} rel_err {err:.2e}", flush=True)
        if not err < 2e-2:
            print("wrong result: not profiled", flush=True)
            return 1
    w @ x
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for cfg in cfgs:
        run(cfg)
    w @ x
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
