"""Recheck (one call): sgk.spmm against the same configuration launched directly and cuBLAS bf16, on
decode shapes, under do_bench (L2 flushed: host time shows once it outlasts the flush) and replayed
from a CUDA graph (device time only); plus the host time per call and the flush's GPU time.
(The runs at 3d81938 and e4f7072 had no cuBLAS column and no provenance in their JSON; the
directory names carry the commit.)"""
import json
import os

import torch
from triton.testing import do_bench

import sgk
from sgk.bench.env import collect_environment
from sgk.bench.harness import host_time_us
from sgk.kernels import spmm as kspmm

from overhead import flush_us  # noqa: E402 (benchmarks/ is the script's directory)

out = {"provenance": collect_environment(), "flush_us": flush_us()}
g = torch.Generator().manual_seed(31)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)


def graph_ms(fn, reps=50):
    fn()
    torch.cuda.synchronize()
    gr = torch.cuda.CUDAGraph()
    with torch.cuda.graph(gr):
        for _ in range(reps):
            fn()
    gr.replay()
    torch.cuda.synchronize()
    s.record()
    gr.replay()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / reps


def host_us(fn, n=500):
    for _ in range(20):  # warm
        fn()
    return host_time_us(fn, n)


rows = []
for sparsity, n in ((0.8, 1), (0.8, 8), (0.8, 16), (0.95, 1), (0.95, 8)):
    a = sgk.CSRMatrix.random(8192, 8192, sparsity, dtype=torch.bfloat16, generator=g).cuda()
    t = a.topology
    t.prepare(bitmap=True)
    x = torch.randn(8192, n, generator=g).cuda().bfloat16()
    sgk.spmm(a, x)
    cfg = kspmm.last_config
    auto = lambda: sgk.spmm(a, x)  # noqa: E731
    direct = lambda: kspmm.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, x, config=cfg, row_bounds=t.row_bounds,  # noqa: E731
                                column_indices16=t.column_indices16, bitmap=t.bitmap)
    r = dict(sparsity=sparsity, n=n, config=str(cfg))
    w = a.to_dense()
    r["cublas_bf16_do_bench_us"] = do_bench(lambda: w @ x, warmup=5, rep=25, return_mode="median") * 1e3
    for name, fn in (("auto", auto), ("direct", direct)):
        r[name + "_do_bench_us"] = do_bench(fn, warmup=5, rep=25, return_mode="median") * 1e3
        r[name + "_graph_us"] = graph_ms(fn) * 1e3
        r[name + "_host_us"] = host_us(fn)
    rows.append(r)
    print(json.dumps(r), flush=True)
out["rows"] = rows
json.dump(out, open(os.path.join(os.environ.get("OUT", "."), "recheck_host.json"), "w"), indent=1)
print("flush us", out["flush_us"])
for r in rows:
    print(f"s={r['sparsity']} N={r['n']:>2}: do_bench auto {r['auto_do_bench_us']:.1f} direct {r['direct_do_bench_us']:.1f} | "
          f"graph auto {r['auto_graph_us']:.1f} direct {r['direct_graph_us']:.1f} | host auto {r['auto_host_us']:.1f} "
          f"direct {r['direct_host_us']:.1f} us | cublas {r['cublas_bf16_do_bench_us']:.1f} us")
