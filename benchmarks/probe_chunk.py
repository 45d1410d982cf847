"""Split gathers with the chunk index slowest over the grid (``SpmmConfig.chunk_major``), at decode
widths (issue #5.1: N = 8-64, where the flat and bitmap kernels run at 0.5-0.9x cuBLAS bf16).

Why: a row's nonzeros are sorted by column, so chunk j of every row (``split_k`` chunks a row)
covers about the same K/split_k slice of B. With the chunk index fastest over the grid (the
default), the programs that run at once on an SM cover every chunk, so each SM's L1 sees all of B
(8192 × 16 bf16 = 256 KB at N = 16) and the gathers go to the L2. With it slowest, the whole grid
works on one slice at a time (32 KB at split 8), which stays in L1.

Floor, 8192², 80%, N = 16, bf16 (13.4 M nonzeros): the compact weights (bf16 value + int16
index) are 54 MB, 12.2 µs at the measured 4.41 TB/s; the gathers of B's rows 13.4 M × 32 B =
430 MB, 13 µs at ~33 TB/s of L1 (about 24 µs from an L2 at 18 TB/s); the fp32 partial sums
(split × 8192 × 16 × 4 B = 4 MB at split 8) and the zeroing and cast around them, ~2-3 µs. So ~15 µs
if the slices stay in L1, ~25 µs if not; the tuner's choice (the flat kernel, unsplit) took 59 µs
in the last decode suite (benchmarks/results/2026-12-01_h200_02c8eda/decode_bf16.json).

Prediction (written before any run): 8192², 80%, N = 16: 59 → ~30-35 µs with chunk-major split 8
(1.4-1.6x cuBLAS bf16); N = 8 ~70 → ~30 µs; N = 32 70 → ~40 µs; N = 64 ~90 → ~60 µs; the same
split with the chunk index fastest no better than unsplit (within 10%).

Outcome (seventh session, ``benchmarks/results/2026-12-01_h200_b4063b1/probe_chunk.json``): missed.
Chunk-major and chunk-minor splits are within ±2% of each other and both slower than the unsplit
flat kernel (8192², 80%, N = 16: 73.1 and 74.0 against 66.2 µs, the tuner's choice 60.4): the gathers
from B are not L2-limited here; the split's partial sums, atomics, zeroing and cast are what shows.

Each configuration's output is checked against float64 first; each launch is a CUDA-graph replay
under do_bench (`probe_prefetch.bench_graph`: no host time). Run from the repository root:

    PYTHONPATH=src python3 benchmarks/probe_chunk.py [--budget S] [--out F]
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time

import torch

import _probe
from _probe import log
from probe_prefetch import DEVICE, bench_graph

import sgk
from sgk.kernels import spmm as kspmm
from sgk.testing import relative_error

T0 = time.time()
TOL = 2e-2
DTYPE = torch.bfloat16
SHAPES = [(8192, 8192, 16, 0.8), (4096, 14336, 16, 0.8), (14336, 4096, 16, 0.8), (8192, 8192, 16, 0.5),
          (8192, 8192, 16, 0.9), (8192, 8192, 8, 0.8), (8192, 8192, 32, 0.8), (8192, 8192, 64, 0.8)]  # N = 16 first
SPLITS = (2, 4, 8, 16)
if DEVICE == "cpu":  # a smoke run under TRITON_INTERPRET=1
    SHAPES, SPLITS = [(70, 300, 16, 0.8)], (2, 4)


def configs(n: int) -> list[kspmm.SpmmConfig]:
    """The library's first flat forms for this N (16-bit indices: the first packed pair form and the
    first two unpacked) and its compact split gathers, unsplit, then split into SPLITS chunks with
    the chunk index fastest and slowest."""
    flat = kspmm._flat(n, compact=True, packed=True)
    base = [dataclasses.replace(c, split_k=1) for c in [flat[0]] + [c for c in flat if c.pack == 1][:2]]
    out = list(base)
    for c in base:
        for s in SPLITS:
            out += [dataclasses.replace(c, split_k=s), dataclasses.replace(c, split_k=s, chunk_major=True)]
    splits = kspmm._COMPACT_TINY_N if n <= 16 else kspmm._COMPACT_SMALL_N
    for c in (c for c in splits if c.split_k > 1):
        out += [c, dataclasses.replace(c, chunk_major=True)]
    return list(dict.fromkeys(out))


def one_shape(rows: list, m: int, k: int, n: int, sp: float, budget: float) -> None:
    a, b, ref, dense = _probe.bitmap_problem(m, k, n, sp, DTYPE, DEVICE)
    t = a.topology
    rec = {"section": "chunk", "m": m, "k": k, "n": n, "sparsity": sp, "nnz": a.nnz, "configs": {}}
    rec["cublas_ms"] = bench_graph(lambda: dense @ b)
    try:
        with torch.no_grad():
            c = sgk.spmm(a, b)
            rec["auto_config"] = str(kspmm.last_config)
            rec["auto_err"] = relative_error(c, ref)
            rec["auto_ms"] = bench_graph(lambda: sgk.spmm(a, b)) if rec["auto_err"] <= TOL else math.nan
    except Exception as e:  # noqa: BLE001 (recorded; the configurations are still timed)
        rec["auto_ms"], rec["auto_error"] = math.nan, f"{type(e).__name__}: {str(e)[:200]}"
    for cfg in configs(n):
        if time.time() - T0 > budget:
            rec["cut_by_budget"] = True
            break

        def fn(cfg=cfg):
            return kspmm.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg, row_bounds=t.row_bounds,
                              column_indices16=t.column_indices16)
        try:
            err = relative_error(fn(), ref)
            ms = bench_graph(fn) if err <= TOL else math.nan
            rec["configs"][str(cfg)] = {"ms": ms, "rel_err": err}
        except Exception as e:  # noqa: BLE001 (one configuration that cannot run must not lose the rest)
            rec["configs"][str(cfg)] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    log(rows, **rec)


def chunk(rows: list, budget: float) -> None:
    for shape in SHAPES:
        if time.time() - T0 > budget:
            log(rows, section="chunk_cut", shapes_left=SHAPES[SHAPES.index(shape):])
            return
        try:
            one_shape(rows, *shape, budget)
        except Exception as e:  # noqa: BLE001 (one shape's failure must not lose the others)
            log(rows, section="chunk_error", shape=shape, error=f"{type(e).__name__}: {str(e)[:300]}")


def _best(rec: dict, pred) -> tuple[str | None, float]:
    timed = {name: r["ms"] for name, r in rec["configs"].items()
             if "ms" in r and not math.isnan(r["ms"]) and pred(kspmm.parse_config(name))}
    if not timed:
        return None, math.nan
    name = min(timed, key=timed.get)
    return name, timed[name]


def _short(name: str | None) -> str:
    c = kspmm.parse_config(name) if name else None
    if c is None:
        return "-"
    return f"{c.kind} {c.rows}x{c.block_k}x{c.block_n}w{c.num_warps} s{c.split_k}"


def _summary(rec: dict) -> str | None:
    if rec.get("section") in ("chunk_cut", "chunk_error"):
        return f"  {rec['section']}: {rec.get('shapes_left') or rec.get('shape')} {rec.get('error', '')}"
    if rec.get("section") != "chunk":
        return None
    us = lambda ms: ms * 1e3  # noqa: E731
    _, unsplit = _best(rec, lambda c: c.split_k == 1)
    _, minor = _best(rec, lambda c: c.split_k > 1 and not c.chunk_major)
    major_name, major = _best(rec, lambda c: c.split_k > 1 and c.chunk_major)
    return (f"  {rec['m']}x{rec['k']} n={rec['n']:3d} {rec['sparsity']:.2f}  cuBLAS {us(rec['cublas_ms']):6.1f}  "
            f"auto {us(rec['auto_ms']):6.1f}  unsplit {us(unsplit):6.1f}  split {us(minor):6.1f}  "
            f"chunk-major {us(major):6.1f} ({_short(major_name)})  vs auto {rec['auto_ms'] / major:.2f}x  "
            f"vs cuBLAS {rec['cublas_ms'] / major:.2f}x")


if __name__ == "__main__":
    sys.exit(_probe.run("probe_chunk", __doc__, {"chunk": chunk}, _summary, budget=300.0, t0=T0))
