"""Host overhead per call on the GPU machine: Triton's launch path against sgk's direct launcher
call, the sgk launchers, the public ops, torch.matmul; and the GPU time of do_bench's L2 flush
(the host time per timed call that the flush hides).

Per-call wall time of N back-to-back calls on a tiny problem (GPU time negligible), then a profile
of the public op. PYTHONPATH=src python benchmarks/overhead.py [--json PATH]
"""
import argparse
import cProfile
import json
import pstats
import time

import torch

import sgk
from sgk.kernels import _launch
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


def flush_us():
    """GPU time of one do_bench L2 flush (zeroing its 256 MB buffer)."""
    cache = torch.empty(256 * 1024 * 1024 // 4, dtype=torch.int, device="cuda")
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        cache.zero_()
    s.record()
    for _ in range(20):
        cache.zero_()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / 20 * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.manual_seed(0)
    a = sgk.CSRMatrix.random(64, 64, 0.9, device="cuda")
    b = torch.randn(64, 64, device="cuda")
    x = torch.randn(64, 32, device="cuda")
    dense = a.to_dense()
    cfg = kspmm.SpmmConfig(4, 32, 64, 4)
    ro, ci, sw, rb = a.row_offsets, a.column_indices, a.row_swizzle, a.topology.row_bounds
    c0 = torch.empty(64, 64, device="cuda")

    k = kspmm._spmm_kernel[(16, 1, 1)](a.topology.row_bounds, ci, sw, a.values, b, c0, c0, 64, 64, 0, 0, 64, 1, 0, 0, 64, 1, ROWS=4,
                                        BLOCK_K=32, BLOCK_N=64, HAS_BIAS=False, RELU=False, num_warps=4)
    print("direct launch problem:", _launch.direct_entry_problem(k), "| kinds in cache:",
          sorted({type(v).__name__ for v in _launch._ENTRIES.values()}))
    # The direct call must give the same numbers as Triton's own path, on every kernel family.
    checks = {}
    for fast in (False, True):
        _launch.set_fast_launch(fast)
        outs = []
        for c_ in (cfg, kspmm.SpmmConfig(4, 8, 32, 1, 1, "1d"), kspmm.SpmmConfig(1, 8, 64, 1, 1, "1d", 4)):
            for _ in range(2):  # the second launch of a key takes the cached path
                o = kspmm.spmm(ro, ci, sw, a.values, b, config=c_, row_bounds=rb)
            outs.append(o)
        for _ in range(2):
            outs.append(sgk.sddmm(x, x, a).values)
            outs.append(sgk.sparse_softmax(a).values)
        checks[fast] = [o.clone() for o in outs]
    same = [torch.equal(p, q) for p, q in zip(checks[False], checks[True])]
    print("kinds in cache:", sorted({type(v).__name__ for v in _launch._ENTRIES.values()}))
    ref = a.to_dense().double() @ b.double()
    err = (checks[True][0].double() - ref).abs().max().item()
    print(f"direct launch == triton launch on spmm tile, 1d, split-K (atomics), sddmm, softmax: {same}; spmm max err {err:.2e}")

    rows = {}
    for fast in (False, True):
        _launch.set_fast_launch(fast)
        tag = "direct" if fast else "triton"
        kspmm.spmm(ro, ci, sw, a.values, b, config=cfg, row_bounds=rb)
        rows[f"kernels.spmm launcher ({tag})"] = per_call_us(lambda: kspmm.spmm(ro, ci, sw, a.values, b, config=cfg, row_bounds=rb))
        rows[f"sgk.spmm ({tag})"] = per_call_us(lambda: sgk.spmm(a, b))
        rows[f"sgk.sddmm ({tag})"] = per_call_us(lambda: sgk.sddmm(x, x, a))
    rows["launch() args only (no kernel)"] = per_call_us(
        lambda: _launch._ENTRIES.get((None, tuple(_launch._int_spec(v) for v in (64, 64, 0, 0, 64, 1, 0, 4096, 64, 1)))))
    rows["torch.empty"] = per_call_us(lambda: torch.empty(64, 64, device="cuda"))
    rows["torch.matmul dense 64^3"] = per_call_us(lambda: dense @ b)
    with torch.no_grad():
        rows["sgk.spmm no_grad (direct)"] = per_call_us(lambda: sgk.spmm(a, b))
    rows["do_bench L2 flush (GPU time)"] = flush_us()
    for name, us in rows.items():
        print(f"{name:36s} {us:7.1f} us/call", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"same": same, "us_per_call": rows, "gpu": torch.cuda.get_device_name(),
                       "torch": torch.__version__}, f, indent=1)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(2000):
        sgk.spmm(a, b)
    pr.disable()
    torch.cuda.synchronize()
    pstats.Stats(pr).sort_stats("tottime").print_stats(14)


if __name__ == "__main__":
    main()
