"""Host time of `sgk.spmm`'s plan paths, per configuration and per part (item 0000 of
docs/performance.md's next list): which host work makes the densify form flip between its device
time and a host-bound time in the DLMC suite, and what a tuner that counts host time would choose.

Section ``plans``: for DLMC-sized bf16 problems, each configuration forced through the tuner
(densify, the 64×256×128 bitmap form, the gathers' first candidate), called through `sgk.spmm`
as an inference call (so through its recorded `SpmmPlan`): the output checked against float64
first, then host µs a call (20 calls back to back, the median of 7 such runs), the time under
do_bench with its L2 flush (what the suite reports), and the device time (a CUDA-graph replay
under do_bench, the flush kept).
The closing lines say, per shape, which configuration the device time picks, which
``max(device, host)`` picks, and which the flushed timer favours.

Section ``parts``: the densify plan's pieces alone, on the same shapes: two `torch.empty`, the
decode's recorded launch (`Prepared.run`), `torch.mm` with and without ``out=``, the plan's call
alone, and `sgk.spmm` (its front, the plan lookup, is the difference of the two medians: noisy, it
can come out below zero).

Prediction (written before any run): the densify plan call 31-35 µs of host against 24-27 for the
bitmap and gather plans; `torch.mm` with ``out=`` ~2 µs dearer than without; two allocations
~6 µs. A host-aware choice would keep densify only where its device time is ≥ ~10 µs below the
bitmap kernel's (2048×512×2048, 512×2048×2048), not at 512×512.

    PYTHONPATH=src python3 benchmarks/probe_host.py [--only plans,parts] [--budget S] [--out F]
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _probe  # noqa: E402
from _probe import log  # noqa: E402

import sgk  # noqa: E402
from sgk.bench.harness import host_time_us  # noqa: E402
from sgk.kernels import spmm as kspmm  # noqa: E402
from sgk.testing import relative_error  # noqa: E402

T0 = time.time()
DEVICE = "cuda"  # (a CPU dry run under the interpreter sets "cpu")
SHAPES = [(512, 512, 256, 0.9), (512, 512, 2048, 0.7), (2048, 512, 2048, 0.8), (512, 2048, 2048, 0.7),
          (128, 1152, 784, 0.8)]
TOL = 2e-2  # bf16 with fp32 accumulation, K <= 2048, against float64


def host_us(fn, runs: int = 7) -> float:
    """Median over ``runs`` of the harness's host time a call (20 calls back to back, no sync inside)."""
    return statistics.median(host_time_us(fn) for _ in range(runs))


def flushed_ms(fn) -> float:
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=5, rep=25, return_mode="median"))


def device_ms(fn) -> float:
    """A CUDA-graph replay under do_bench, its L2 flush kept (as probe_prefetch and probe_chunk time)."""
    from probe_prefetch import bench_graph

    return bench_graph(fn)


def forced(cfg):
    """A tuner stand-in that returns ``cfg`` (which must be on the candidate list), or for None the
    first candidate that is neither a bitmap nor the densify form (the gathers' heuristic)."""
    def choose(key, cands, run, device):
        if cfg is None:
            return next(c for c in cands if c.kind not in ("bitmap", "densify"))
        if cfg not in cands:
            raise ValueError(f"{cfg} is not a candidate here")
        return cfg
    return choose


CONFIGS = {"densify": kspmm.DENSIFY, "bitmap 64x256x128": kspmm.SpmmConfig(64, 256, 128, 8, 2, "bitmap", 1),
           "gather first": None}


def plans(rows, budget):
    real_choose = kspmm._TUNER.choose
    try:
        for m, k, n, s in SHAPES:
            for name, cfg in CONFIGS.items():
                if time.time() - T0 > budget:
                    return
                a, b, ref, _ = _probe.bitmap_problem(m, k, n, s, torch.bfloat16, DEVICE)  # a new topology: a new plan
                kspmm._TUNER.choose = forced(cfg)
                kspmm._CHOSEN.clear()
                kspmm._TUNER.cache.clear()
                row = {"section": "plans", "m": m, "k": k, "n": n, "sparsity": s, "name": name, "config": str(cfg)}
                try:
                    with torch.no_grad():
                        c = sgk.spmm(a, b)
                        row["chosen"] = str(kspmm.last_config)
                        row["rel_err"] = relative_error(c, ref)
                        if row["rel_err"] > TOL:
                            raise AssertionError(f"relative error {row['rel_err']:.3g} > {TOL}")
                        fn = lambda: sgk.spmm(a, b)  # noqa: E731
                        fn()
                        row["host_us"] = host_us(fn)
                        row["flushed_ms"] = flushed_ms(fn)
                        row["device_ms"] = device_ms(fn)
                        plan = next(iter(a.topology._cache.get("spmm_plans", {}).values()), None)
                        row["recorded"] = plan is not None and plan._state is not None
                except Exception as e:  # noqa: BLE001 (a configuration that cannot run here)
                    row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
                log(rows, **row)
    finally:
        kspmm._TUNER.choose = real_choose
        kspmm._CHOSEN.clear()
        kspmm._TUNER.cache.clear()


def parts(rows, budget):
    real_choose = kspmm._TUNER.choose
    try:
        for m, k, n, s in SHAPES:
            if time.time() - T0 > budget:
                return
            a, b, ref, dense = _probe.bitmap_problem(m, k, n, s, torch.bfloat16, DEVICE)
            kspmm._TUNER.choose = forced(kspmm.DENSIFY)
            kspmm._CHOSEN.clear()
            kspmm._TUNER.cache.clear()
            with torch.no_grad():
                for _ in range(2):
                    sgk.spmm(a, b)
                plan = next(iter(a.topology._cache.get("spmm_plans", {}).values()), None)
                rec = plan._state[0] if plan is not None and plan._state is not None else None
                scratch = torch.empty(m, k, dtype=torch.bfloat16, device=DEVICE)
                c = torch.empty(m, n, dtype=torch.bfloat16, device=DEVICE)
                row = {"section": "parts", "m": m, "k": k, "n": n, "sparsity": s, "recorded": rec is not None}
                row["empty_scratch_us"] = host_us(lambda: torch.empty(m, k, dtype=torch.bfloat16, device=DEVICE))
                row["empty_c_us"] = host_us(lambda: torch.empty(m, n, dtype=torch.bfloat16, device=DEVICE))
                if rec is not None:
                    row["decode_run_us"] = host_us(lambda: rec.run((a.values, scratch)))
                row["mm_out_us"] = host_us(lambda: torch.mm(dense, b, out=c))
                row["mm_us"] = host_us(lambda: torch.mm(dense, b))
                row["sgk_spmm_us"] = host_us(lambda: sgk.spmm(a, b))
                if plan is not None:
                    row["plan_call_us"] = host_us(lambda: plan(a.values, b))
                    row["front_us"] = row["sgk_spmm_us"] - row["plan_call_us"]
            log(rows, **row)
    finally:
        kspmm._TUNER.choose = real_choose
        kspmm._CHOSEN.clear()
        kspmm._TUNER.cache.clear()


def _choices(rows) -> list[str]:
    """Per shape: the configuration each criterion picks, and its flushed time."""
    out = []
    shapes = {}
    for r in rows:
        if r["section"] == "plans" and "device_ms" in r:
            shapes.setdefault((r["m"], r["k"], r["n"], r["sparsity"]), []).append(r)
    for shape, rs in shapes.items():
        by_dev = min(rs, key=lambda r: r["device_ms"])
        by_host = min(rs, key=lambda r: max(r["device_ms"] * 1e3, r["host_us"]))
        by_flush = min(rs, key=lambda r: r["flushed_ms"])
        out.append(f"  {shape}: device picks {by_dev['name']} ({by_dev['flushed_ms'] * 1e3:.1f} µs flushed), "
                   f"max(device, host) picks {by_host['name']} ({by_host['flushed_ms'] * 1e3:.1f}), "
                   f"flushed best {by_flush['name']} ({by_flush['flushed_ms'] * 1e3:.1f})")
    return out


def _summary(r):
    if r["section"] == "plans":
        if "error" in r:
            return f"plans {r['m']}x{r['k']}x{r['n']} {r['sparsity']} {r['name']:18s} error {r['error'][:80]}"
        return (f"plans {r['m']}x{r['k']}x{r['n']} {r['sparsity']} {r['name']:18s} host {r['host_us']:5.1f} µs  "
                f"flushed {r['flushed_ms'] * 1e3:6.1f} µs  device {r['device_ms'] * 1e3:6.1f} µs  recorded {r['recorded']}")
    if r["section"] == "parts":
        keys = ("empty_scratch_us", "empty_c_us", "decode_run_us", "mm_out_us", "mm_us", "plan_call_us", "front_us",
                "sgk_spmm_us")
        return f"parts {r['m']}x{r['k']}x{r['n']} " + " ".join(f"{k[:-3]} {r[k]:.1f}" for k in keys if k in r)
    return None


SECTIONS = {"plans": plans, "parts": parts}


def main(argv=None) -> int:
    rows_holder = []

    def summary(r):
        rows_holder.append(r)
        return _summary(r)

    rc = _probe.run("probe_host", __doc__, SECTIONS, summary, argv, budget=300.0, t0=T0)
    for line in _choices(rows_holder):
        print(line)
    return rc


if __name__ == "__main__":
    sys.exit(main())
