"""The dependent-load chain of the small SpMM calls (issue 3 fp32; written in the ninth 2026-12-01
session, not yet run).

After the fp32 densify form, fp32 DLMC stands at 1.40x cuBLAS fp32 (target 1.8x). 158 of the 208
cases are small: median sgk time 10.6 µs (rn50) and 12.6 µs (Transformer N = 256), against
cuBLAS fp32's 14.6 / 13.5, at host times (19-27 µs) that do_bench's L2 flush hides. They are
bound by latency, not bytes (a 64×256 weight at N = 3136 moves 4 MB: ~1 µs at DRAM rate). Every
gather kernel starts with a chain of dependent loads, all DRAM misses after the flush: the row
swizzle, then the row's offsets, then its column indices (and values), then the rows of B they
select. Loading the offsets in swizzle order from a table built once per topology (``sw_starts``,
``sw_ends``, beside the swizzle itself) takes one level out of the chain.

Section ``chase``: the latency floor. A pointer chase of depth D (0: a store only) through a
64 MB random permutation, 8 programs an SM, device time (CUDA-graph replays, L2 flushed before
each): the slope is one dependent DRAM load's latency, the intercept a launch's.
Section ``chain``: for DLMC cases where the ninth session's fp32 run chose a ``tile`` or unsplit
``1d`` configuration (``benchmarks/results/2026-12-01_h200_b162524/spmm_dlmc_fp32.json``), that
configuration three ways: the library's launch, this probe's copy of the kernel as it is
(``SWB=False``: must match the library's time), and the copy with the offsets loaded in swizzle
order (``SWB=True``). Every output is checked against float64 first.

Floor and prediction (before the run): a dependent DRAM load ~0.6-0.8 µs on the H200, a launch
~2-3 µs; so the chain (swizzle, offsets, indices, B) is ~3 µs of the 10-13 µs. SWB saves one
level, ~0.6 µs: 4-8% on those cases, fp32 DLMC 1.40x → ~1.45x cuBLAS fp32 if it carries over to
every gather kernel (tile, 1d, flat; SDDMM and softmax have the same chain).

Added in the first 2026-12-02 session, after the first run (chase: 0.43 µs a dependent load,
4.9 µs intercept; SWB 2.6% geomean): the forms ``pf`` and ``swbpf``, each step's column indices
and values loaded one step ahead (loop-carried), so that a step waits for B's rows alone. The
first run's ``library`` form also copied its result into C (a second kernel, ~1.7 µs); it now
returns its own C. Prediction for ``pf``: ~0.4 µs a step after the first, 5-15% on the
Transformer N = 256 cases (rows of 50-150 nonzeros, several steps), 0-5% on rn50 (one to three).

    PYTHONPATH=src python3 benchmarks/probe_chain.py [--only chase,chain] [--budget S] [--out F]
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import triton
import triton.language as tl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _probe  # noqa: E402
from _probe import log  # noqa: E402

from sgk.io.smtx import load_smtx  # noqa: E402
from sgk.kernels import spmm as kspmm  # noqa: E402
from sgk.kernels.spmm import _write_rows  # noqa: E402
from sgk.testing import relative_error  # noqa: E402

T0 = time.time()
CPU = os.environ.get("TRITON_INTERPRET") == "1"
DEV = "cpu" if CPU else "cuda"
ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks/results/2026-12-01_h200_b162524/spmm_dlmc_fp32.json"
CASES = 40


@triton.jit
def _chase_kernel(p_ptr, out_ptr, D: tl.constexpr):
    """out[pid] = p applied D times to pid: D dependent loads (0: a store only)."""
    pid = tl.program_id(0)
    i = pid
    for _ in tl.static_range(D):
        i = tl.load(p_ptr + i)
    tl.store(out_ptr + pid, i)


@triton.jit
def _row_bounds(row_offsets_ptr, row_swizzle_ptr, sw_starts_ptr, sw_ends_ptr, slot, row_ok, SWB: tl.constexpr):
    """(rows, starts, ends) of the swizzle slots ``slot``: as the library loads them (the offsets
    at the swizzled rows: two dependent loads), or with SWB from the tables in swizzle order (all
    three loads independent)."""
    rows = tl.load(row_swizzle_ptr + slot, mask=row_ok, other=0)
    if SWB:
        starts = tl.load(sw_starts_ptr + slot, mask=row_ok, other=0)
        ends = tl.load(sw_ends_ptr + slot, mask=row_ok, other=0)
    else:
        starts = tl.load(row_offsets_ptr + rows, mask=row_ok, other=0)
        ends = tl.load(row_offsets_ptr + rows + 1, mask=row_ok, other=0)
    return rows, starts, ends


@triton.jit
def _tile_kernel(row_offsets_ptr, column_indices_ptr, row_swizzle_ptr, sw_starts_ptr, sw_ends_ptr, values_ptr,
                 b_ptr, c_ptr, m, n, stride_bk, stride_bn, stride_cm,
                 ROWS: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, SWB: tl.constexpr,
                 PF: tl.constexpr = False):
    """The library's ``_spmm_kernel`` (no batch, bias or ReLU); SWB: the offsets in swizzle order;
    PF: each step's column indices and values loaded one step ahead (loop-carried), so that a step
    waits for one dependent load (B's rows) instead of two (indices, then B)."""
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    slot = pid_r * ROWS + tl.arange(0, ROWS)
    row_ok = slot < m
    rows, starts, ends = _row_bounds(row_offsets_ptr, row_swizzle_ptr, sw_starts_ptr, sw_ends_ptr, slot, row_ok, SWB)
    longest = tl.max(ends - starts, axis=0)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    b_cols = b_ptr + offs_n.to(tl.int64) * stride_bn
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros([ROWS, BLOCK_K, BLOCK_N], dtype=tl.float32)
    if PF:
        idx = starts[:, None] + offs_k[None, :]
        mask_k = idx < ends[:, None]
        cols = tl.load(column_indices_ptr + idx, mask=mask_k, other=0)
        vals = tl.load(values_ptr + idx, mask=mask_k, other=0.0).to(tl.float32)
        for kk in range(0, longest, BLOCK_K):
            nidx = idx + BLOCK_K
            nmask = nidx < ends[:, None]
            ncols = tl.load(column_indices_ptr + nidx, mask=nmask, other=0)
            nvals = tl.load(values_ptr + nidx, mask=nmask, other=0.0).to(tl.float32)
            b_tile = tl.load(b_cols[None, None, :] + cols.to(tl.int64)[:, :, None] * stride_bk,
                             mask=mask_k[:, :, None] & mask_n[None, None, :], other=0.0).to(tl.float32)
            acc += vals[:, :, None] * b_tile
            idx = nidx
            mask_k = nmask
            cols = ncols
            vals = nvals
    else:
        for kk in range(0, longest, BLOCK_K):
            idx = starts[:, None] + kk + offs_k[None, :]
            mask_k = idx < ends[:, None]
            cols = tl.load(column_indices_ptr + idx, mask=mask_k, other=0)
            vals = tl.load(values_ptr + idx, mask=mask_k, other=0.0).to(tl.float32)
            b_tile = tl.load(b_cols[None, None, :] + cols.to(tl.int64)[:, :, None] * stride_bk,
                             mask=mask_k[:, :, None] & mask_n[None, None, :], other=0.0).to(tl.float32)
            acc += vals[:, :, None] * b_tile
    _write_rows(tl.sum(acc, axis=1), c_ptr, c_ptr, 0, 0, 0, stride_cm, 1, rows, row_ok, offs_n, mask_n,
                False, False, False)


@triton.jit
def _1d_kernel(row_offsets_ptr, column_indices_ptr, row_swizzle_ptr, sw_starts_ptr, sw_ends_ptr, values_ptr,
               b_ptr, c_ptr, m, n, stride_bk, stride_bn, stride_cm,
               ROWS: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr, EVEN_N: tl.constexpr,
               SWB: tl.constexpr, PF: tl.constexpr = False):
    """The library's ``_spmm_1d_kernel`` (no batch, bias, ReLU or split); SWB as above; PF: the
    unmasked loop's indices and values loaded a step ahead as (ROWS, BLOCK_K) tiles, each
    unrolled nonzero's column picked out of the tile in registers."""
    pid_r = tl.program_id(0)
    pid_n = tl.program_id(1)
    slot = pid_r * ROWS + tl.arange(0, ROWS)
    row_ok = slot < m
    rows, starts, ends = _row_bounds(row_offsets_ptr, row_swizzle_ptr, sw_starts_ptr, sw_ends_ptr, slot, row_ok, SWB)
    lengths = ends - starts
    longest = tl.max(lengths, axis=0)
    shortest = tl.min(tl.where(row_ok, lengths, longest), axis=0)
    full = shortest - shortest % BLOCK_K
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < n
    b_cols = b_ptr + offs_n.to(tl.int64) * stride_bn
    acc = tl.zeros([ROWS, BLOCK_N], dtype=tl.float32)
    if PF:
        offs_k = tl.arange(0, BLOCK_K)
        idx2 = starts[:, None] + offs_k[None, :]
        m2 = offs_k[None, :] < full
        cols2 = tl.load(column_indices_ptr + idx2, mask=m2, other=0)
        vals2 = tl.load(values_ptr + idx2, mask=m2, other=0.0).to(tl.float32)
        for kk in range(0, full, BLOCK_K):
            nidx = idx2 + BLOCK_K
            nm = (kk + BLOCK_K + offs_k[None, :]) < full
            ncols = tl.load(column_indices_ptr + nidx, mask=nm, other=0)
            nvals = tl.load(values_ptr + nidx, mask=nm, other=0.0).to(tl.float32)
            for j in tl.static_range(BLOCK_K):
                sel = offs_k[None, :] == j
                col = tl.sum(tl.where(sel, cols2, 0), axis=1)
                val = tl.sum(tl.where(sel, vals2, 0.0), axis=1)
                ptrs = b_cols[None, :] + col.to(tl.int64)[:, None] * stride_bk
                if EVEN_N:
                    bt = tl.load(ptrs)
                else:
                    bt = tl.load(ptrs, mask=mask_n[None, :], other=0.0)
                acc += val[:, None] * bt.to(tl.float32)
            idx2 = nidx
            cols2 = ncols
            vals2 = nvals
    else:
        for kk in range(0, full, BLOCK_K):
            for j in tl.static_range(BLOCK_K):
                idx = starts + (kk + j)
                col = tl.load(column_indices_ptr + idx)
                val = tl.load(values_ptr + idx).to(tl.float32)
                ptrs = b_cols[None, :] + col.to(tl.int64)[:, None] * stride_bk
                if EVEN_N:
                    bt = tl.load(ptrs)
                else:
                    bt = tl.load(ptrs, mask=mask_n[None, :], other=0.0)
                acc += val[:, None] * bt.to(tl.float32)
    for kk in range(full, longest, BLOCK_K):
        for j in tl.static_range(BLOCK_K):
            idx = starts + (kk + j)
            mk = idx < ends
            col = tl.load(column_indices_ptr + idx, mask=mk, other=0)
            val = tl.load(values_ptr + idx, mask=mk, other=0.0).to(tl.float32)
            bt = tl.load(b_cols[None, :] + col.to(tl.int64)[:, None] * stride_bk, mask=mk[:, None] & mask_n[None, :],
                         other=0.0)
            acc += val[:, None] * bt.to(tl.float32)
    _write_rows(acc, c_ptr, c_ptr, 0, 0, 0, stride_cm, 1, rows, row_ok, offs_n, mask_n, False, False, False)


def chase(rows: list, budget: float) -> None:
    size = 1 << (10 if CPU else 24)  # 64 MB of int32 on the GPU
    g = torch.Generator().manual_seed(3)
    p = torch.randperm(size, generator=g).to(torch.int32).to(DEV)
    programs = 4 if CPU else 8 * torch.cuda.get_device_properties(0).multi_processor_count
    out = torch.empty(programs, dtype=torch.int32, device=DEV)
    for depth in (0, 1, 2, 4, 8):
        opts = {} if CPU else {"num_warps": 1}
        fn = lambda: _chase_kernel[(programs,)](p, out, D=depth, **opts)  # noqa: E731
        fn()
        want = torch.arange(programs, device=DEV)
        for _ in range(depth):
            want = p[want].long()
        ok = bool((out.long() == want).all())
        log(rows, section="chase", depth=depth, programs=programs, status="ok" if ok else "wrong",
            us=1e3 * _probe.graph_ms(fn) if ok else None)


def _cases():
    data = json.loads(RUN.read_text())
    picked = []
    for c in data["cases"]:
        cfg = kspmm.parse_config(c["impls"]["sgk"].get("config"))
        if c["group"] in ("rn50", "transformer N=256") and cfg is not None and cfg.split_k == 1 \
                and cfg.kind in ("tile", "1d"):
            picked.append((c, cfg))
    if CPU:  # a smoke run: the smallest case of each kind
        return [min((x for x in picked if x[1].kind == kind), key=lambda x: x[0]["m"] * x[0]["k"])
                for kind in ("tile", "1d")]
    step = max(1, len(picked) // CASES)
    return picked[::step][:CASES]


def chain(rows: list, budget: float) -> None:
    dlmc = ROOT / ".dlmc"
    for case, cfg in _cases():
        if time.time() - T0 > budget:
            log(rows, section="chain", status="skipped", reason="budget")
            return
        path = dlmc / case["path"].split(".dlmc/", 1)[-1]
        g = torch.Generator().manual_seed(hash(case["name"]) % (1 << 31))
        a = load_smtx(path, generator=g, device=DEV)
        m, k = a.shape
        n = case["n"] if not CPU else 8
        b = torch.randn(k, n, generator=g).to(DEV)
        t = a.topology
        ref = a.to_dense().double() @ b.double()
        swz = t.row_swizzle.long()
        sw_starts = t.row_offsets[swz].contiguous()
        sw_ends = t.row_offsets[swz + 1].contiguous()
        c = torch.empty(m, n, device=DEV)
        base = dict(section="chain", name=case["name"], m=m, k=k, n=n, nnz=t.nnz, config=str(cfg),
                    suite_us=1e3 * case["impls"]["sgk"]["ms"], cublas_us=1e3 * case["impls"]["cublas"]["ms"])
        grid = (triton.cdiv(m, cfg.rows), triton.cdiv(n, cfg.block_n))
        opts = {} if CPU else {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
        common = (t.row_offsets, t.column_indices, t.row_swizzle, sw_starts, sw_ends, a.values, b, c, m, n,
                  b.stride(0), b.stride(1), n)

        def copy(swb, pf=False, common=common, grid=grid, opts=opts, cfg=cfg, n=n):
            if cfg.kind == "tile":
                return lambda: _tile_kernel[grid](*common, ROWS=cfg.rows, BLOCK_K=cfg.block_k, BLOCK_N=cfg.block_n,
                                                  SWB=swb, PF=pf, **opts)
            return lambda: _1d_kernel[grid](*common, ROWS=cfg.rows, BLOCK_K=cfg.block_k, BLOCK_N=cfg.block_n,
                                            EVEN_N=n % cfg.block_n == 0, SWB=swb, PF=pf, **opts)

        # "library" returns a new C (no copy into c: a second kernel would be timed with it)
        lib = lambda a=a, b=b, t=t, cfg=cfg: kspmm.spmm(  # noqa: E731
            t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg,
            column_indices16=t.column_indices16 if cfg.compact else None,
            **({"row_bounds": t.row_bounds} if hasattr(t, "row_bounds") else {}))
        forms = {"library": lib, "copy": copy(False), "swb": copy(True), "pf": copy(False, True),
                 "swbpf": copy(True, True)}
        for form, fn in forms.items():
            try:
                c.fill_(float("nan"))
                got = fn()
                err = relative_error(got if form == "library" else c, ref)
                ok = err <= 1e-4
                log(rows, **base, form=form, status="ok" if ok else "wrong", rel_err=err,
                    us=1e3 * _probe.graph_ms(fn) if ok else None)
            except Exception as e:  # noqa: BLE001 (one form's failure must not lose the others)
                log(rows, **base, form=form, status="error", error=f"{type(e).__name__}: {e}"[:240])


def _summary(r: dict) -> str | None:
    if r.get("status") != "ok":
        return f"{r.get('section')} {r.get('name', r.get('depth'))} {r.get('form', '')} {r.get('status')} " \
               f"{r.get('error', r.get('rel_err', r.get('reason', '')))}"
    if r["section"] == "chase":
        return f"chase depth {r['depth']}  {r['us']:7.2f} us"
    kind = r["config"].split("kind='")[-1].split("'")[0] if "kind='" in r["config"] else "tile"
    return (f"chain {r['name'][:48]:48s} {r['m']:5d}x{r['k']:<5d} n={r['n']:<5d} {kind:4s} {r['form']:7s} "
            f"{r['us']:7.2f} us (suite {r['suite_us']:.1f}, cuBLAS {r['cublas_us']:.1f})")


def main(argv=None) -> int:
    return _probe.run("probe_chain", __doc__, {"chase": chase, "chain": chain}, _summary, argv, t0=T0)


if __name__ == "__main__":
    sys.exit(main())
