"""A dense Triton product for the densify form: fp32 through three TF32 products, bf16 beside cuBLAS
(issue 3, fp32 and half precision; new in the eighth 2026-12-01 session).

The densify form (A decoded into a dense scratch, then a dense product) is offered for fp16/bf16
only, its product is ``torch.mm`` (cuBLAS; 16-18 µs of the call's 31-34 µs of host time on the H200
machine). In fp32 it would only reach cuBLAS fp32 (CUDA cores), which sgk's gathers already beat
1.16-1.40x on the Transformer N = 2048 shapes. Three TF32 tensor-core products (each operand split
into a TF32 head and tail, hi·hi + hi·lo + lo·hi: ~fp32 accuracy) run at up to a third of the TF32
rate, ~3x cuBLAS fp32's, if the split does not stall the MMAs. Triton's own
``input_precision="tf32x3"`` splits both operands in registers (the bitmap kernel uses it; it lost
1.5-5x to the gathers, fourth session); here the weight's split is done once, in memory (the
densify decode could write it), and only the dense operand B is split in the kernel.

Section ``fp32``: per shape, cuBLAS fp32 and TF32 (one product, the speed ceiling), sgk.spmm at
70% and 90% (the tuner's choice, the path to beat), and four Triton forms, each in three tile
configurations: ``tf32`` (one TF32 product: not fp32-accurate, a ceiling), ``x3`` (Triton's
tf32x3), ``presplit`` (A's and B's heads and tails all from memory: three products from shared
memory; B's split, a pass over B, timed on its own as ``bsplit``) and ``transposed`` (Cᵀ = Bᵀ·Aᵀ:
B's tile split in registers as the MMA's register operand, A's head and tail from shared memory).
Section ``bf16``: the same shapes, cuBLAS bf16 against the Triton product (the densify form's host
time would fall by torch.mm's less our recorded launch's). Section ``sgk`` (added after the first
run, with the product in the library, branch ``fp32-densify``): sgk.spmm in fp32 at 50/70/90%, the
tuner's choice, the densify form forced and the gathers forced. (On a code without the fp32
densify form, the forced choice falls back to the tuner's first candidate.)
Every output is checked against float64 first (fp32 forms at 1e-4 but ``tf32``, bf16 at 2e-2);
times are device times: CUDA-graph replays under do_bench, L2 flushed before each.

Floor and prediction (written before the run), 512×2048×2048 fp32 (4.3 GFLOP dense):
cuBLAS TF32 26 µs and fp32 100 µs (07dba97), sgk's gathers 103 µs geomean over 50-98%. Three
TF32 products from shared memory at the TF32 rate cuBLAS reaches (165 TFLOP/s) would take ~78 µs;
prediction: ``presplit`` ~60-80 µs, ``transposed`` ~70-90, ``x3`` ~120+; 512×512×2048: presplit
~25-30 µs against sgk's 48 µs at 70% and cuBLAS fp32's 34; at 512×512×256 no gain (~10 µs, the
gathers' 11). bf16: the Triton product within 10% of cuBLAS at ≥ 2048×512×2048, 10-30% slower at
512×512×256.

    PYTHONPATH=src python3 benchmarks/probe_dense.py [--only fp32,bf16,sgk] [--budget S] [--out F]
"""
from __future__ import annotations

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

import sgk  # noqa: E402
from sgk.kernels import spmm as kspmm  # noqa: E402
from sgk.testing import relative_error  # noqa: E402

T0 = time.time()
DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
SHAPES = [(512, 512, 2048), (2048, 512, 2048), (512, 2048, 2048), (512, 512, 256), (4096, 1024, 4096)]
if DEVICE == "cpu":
    SHAPES = [(48, 40, 36)]
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages)
FP32_CONFIGS = [(128, 128, 32, 8, 3), (128, 64, 32, 4, 3), (64, 128, 32, 4, 4),
                (64, 64, 32, 4, 3)]  # (the last added after the first run: small grids, next item 000002)
BF16_CONFIGS = [(128, 128, 64, 8, 3), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4), (128, 256, 64, 8, 3)]
if DEVICE == "cpu":
    FP32_CONFIGS, BF16_CONFIGS = [(16, 16, 16, 1, 1)], [(16, 16, 16, 1, 1)]
TF32_MASK = -8192  # 0xFFFFE000 as int32: keep the sign, exponent and the top 10 mantissa bits


@triton.jit
def _split(x):
    hi = (x.to(tl.int32, bitcast=True) & -8192).to(tl.float32, bitcast=True)
    return hi, x - hi


@triton.jit
def _mm_kernel(a_ptr, a2_ptr, b_ptr, b2_ptr, c_ptr, M, N, K,
               BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, MODE: tl.constexpr,
               PRECISION: tl.constexpr):
    """C (M×N) = A (M×K) · B (K×N), all row-major. MODE 0: one product at PRECISION; 1: the heads
    (a_ptr, b_ptr) and tails (a2_ptr, b2_ptr) from memory, three TF32 products."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in tl.range(0, K, BK):
        ks = k0 + rk
        amask = (rm[:, None] < M) & (ks[None, :] < K)
        bmask = (ks[:, None] < K) & (rn[None, :] < N)
        aoff = rm[:, None].to(tl.int64) * K + ks[None, :]
        boff = ks[:, None].to(tl.int64) * N + rn[None, :]
        a = tl.load(a_ptr + aoff, mask=amask, other=0.0)
        b = tl.load(b_ptr + boff, mask=bmask, other=0.0)
        if MODE == 0:
            acc = tl.dot(a, b, acc, input_precision=PRECISION)
        else:
            a2 = tl.load(a2_ptr + aoff, mask=amask, other=0.0)
            b2 = tl.load(b2_ptr + boff, mask=bmask, other=0.0)
            acc = tl.dot(a, b2, acc, input_precision="tf32")
            acc = tl.dot(a2, b, acc, input_precision="tf32")
            acc = tl.dot(a, b, acc, input_precision="tf32")
    cmask = (rm[:, None] < M) & (rn[None, :] < N)
    tl.store(c_ptr + rm[:, None].to(tl.int64) * N + rn[None, :], acc.to(c_ptr.dtype.element_ty), mask=cmask)


@triton.jit
def _mm_t_kernel(ahi_ptr, alo_ptr, b_ptr, c_ptr, M, N, K,
                 BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """C = A·B computed as Cᵀ = Bᵀ·Aᵀ: B's tile (BN×BK) split in registers (the MMA's register
    operand), A's head and tail (BK×BM tiles of Aᵀ) from shared memory; three TF32 products."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BN, BM), dtype=tl.float32)
    for k0 in tl.range(0, K, BK):
        ks = k0 + rk
        bt = tl.load(b_ptr + ks[None, :].to(tl.int64) * N + rn[:, None], mask=(rn[:, None] < N) & (ks[None, :] < K),
                     other=0.0)
        aoff = rm[None, :].to(tl.int64) * K + ks[:, None]
        amask = (ks[:, None] < K) & (rm[None, :] < M)
        ahi = tl.load(ahi_ptr + aoff, mask=amask, other=0.0)
        alo = tl.load(alo_ptr + aoff, mask=amask, other=0.0)
        bhi, blo = _split(bt)
        acc = tl.dot(blo, ahi, acc, input_precision="tf32")
        acc = tl.dot(bhi, alo, acc, input_precision="tf32")
        acc = tl.dot(bhi, ahi, acc, input_precision="tf32")
    cmask = (rn[:, None] < N) & (rm[None, :] < M)
    tl.store(c_ptr + rm[None, :].to(tl.int64) * N + rn[:, None], acc, mask=cmask)


def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    hi = (x.view(torch.int32) & TF32_MASK).view(torch.float32)
    return hi, x - hi


def triton_mm(form: str, cfg, a, b, c, parts):
    bm, bn, bk, warps, stages = cfg
    m, k = a.shape
    n = b.shape[1]
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
    opts = {} if DEVICE == "cpu" else {"num_warps": warps, "num_stages": stages}
    if form == "transposed":
        ahi, alo = parts["a"]
        return lambda: _mm_t_kernel[grid](ahi, alo, b, c, m, n, k, BM=bm, BN=bn, BK=bk, **opts)
    if form == "presplit":
        (ahi, alo), (bhi, blo) = parts["a"], parts["b"]
        return lambda: _mm_kernel[grid](ahi, alo, bhi, blo, c, m, n, k, BM=bm, BN=bn, BK=bk, MODE=1,
                                        PRECISION="tf32", **opts)
    precision = {"tf32": "tf32", "x3": "tf32x3", "plain": "ieee"}[form]
    return lambda: _mm_kernel[grid](a, a, b, b, c, m, n, k, BM=bm, BN=bn, BK=bk, MODE=0, PRECISION=precision, **opts)


def one_shape(rows: list, section: str, m: int, k: int, n: int, dtype) -> None:
    g = torch.Generator().manual_seed(m * 3 + k * 5 + n)
    a64 = torch.randn(m, k, generator=g, dtype=torch.float64)
    b64 = torch.randn(k, n, generator=g, dtype=torch.float64)
    a, b = a64.to(dtype).to(DEVICE), b64.to(dtype).to(DEVICE)
    ref = a.double() @ b.double()
    c = torch.empty(m, n, dtype=dtype, device=DEVICE)
    base = dict(section=section, m=m, k=k, n=n)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4

    def timed(impl, fn, out, tol_=tol, **extra):
        try:
            out.fill_(float("nan"))
            fn()
            err = relative_error(out, ref)
            if not err <= tol_:
                log(rows, **base, impl=impl, status="wrong", rel_err=err, **extra)
                return
            log(rows, **base, impl=impl, status="ok", us=1e3 * _probe.graph_ms(fn), rel_err=err, **extra)
        except Exception as e:  # noqa: BLE001 (a configuration that cannot compile or run here)
            log(rows, **base, impl=impl, status="error", error=f"{type(e).__name__}: {str(e)[:200]}", **extra)

    if dtype == torch.float32:
        prev = torch.backends.cuda.matmul.allow_tf32
        try:
            torch.backends.cuda.matmul.allow_tf32 = False
            timed("cublas_fp32", lambda: torch.mm(a, b, out=c), c)
            torch.backends.cuda.matmul.allow_tf32 = True
            timed("cublas_tf32", lambda: torch.mm(a, b, out=c), c, tol_=5e-3)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = prev
        for sp in (0.7, 0.9):
            gs = torch.Generator().manual_seed(m + k + n + int(100 * sp))
            s = sgk.CSRMatrix.random(m, k, sp, dtype=dtype, generator=gs).to(DEVICE)
            sref = s.to_dense().double() @ b.double()
            try:
                out = sgk.spmm(s, b)
                err = relative_error(out, sref)
                us = 1e3 * _probe.graph_ms(lambda: sgk.spmm(s, b)) if err <= tol else None
                log(rows, **base, impl=f"sgk_{int(100 * sp)}", status="ok" if us else "wrong", us=us, rel_err=err,
                    config=str(kspmm.last_config))
            except Exception as e:  # noqa: BLE001
                log(rows, **base, impl=f"sgk_{int(100 * sp)}", status="error", error=f"{type(e).__name__}: {e}"[:240])
        parts = {"a": split(a), "b": split(b)}
        bhi, blo = torch.empty_like(b), torch.empty_like(b)

        def bsplit():
            torch.bitwise_and(b.view(torch.int32), TF32_MASK, out=bhi.view(torch.int32))
            torch.sub(b, bhi, out=blo)

        if DEVICE != "cpu":
            log(rows, **base, impl="bsplit", status="ok", us=1e3 * _probe.graph_ms(bsplit))
        for form in ("tf32", "x3", "presplit", "transposed"):
            for cfg in FP32_CONFIGS:
                if time.time() - T0 > BUDGET[0]:
                    return
                timed(form, triton_mm(form, cfg, a, b, c, parts), c, tol_=5e-3 if form == "tf32" else tol,
                      config=list(cfg))
    else:
        timed("cublas_bf16", lambda: torch.mm(a, b, out=c), c)
        for cfg in BF16_CONFIGS:
            if time.time() - T0 > BUDGET[0]:
                return
            timed("triton", triton_mm("plain", cfg, a, b, c, {}), c, config=list(cfg))


BUDGET = [540.0]


def sgk_fp32(rows: list, budget: float) -> None:
    """Section ``sgk``: the library's fp32 path after the densify form's fp32 product went in
    (sgk.spmm as an inference call: the tuner's choice, its config and time; the densify form
    forced; the gathers forced, ``method="csr"``), at 50/70/90% on the section's shapes."""
    from sgk.kernels import spmm as kmod

    for m, k, n in SHAPES:
        for sp in (0.5, 0.7, 0.9):
            if time.time() - T0 > budget:
                log(rows, section="sgk", status="skipped", reason="budget")
                return
            g = torch.Generator().manual_seed(m + 7 * k + n + int(100 * sp))
            a = sgk.CSRMatrix.random(m, k, sp, generator=g).to(DEVICE)
            b = torch.randn(k, n, generator=g).to(DEVICE)
            ref = a.to_dense().double() @ b.double()
            base = dict(section="sgk", m=m, k=k, n=n, sparsity=sp)
            for impl in ("auto", "densify", "csr"):
                try:
                    if impl == "densify":
                        kmod._TUNER.choose = lambda key, cands, run, device: (kmod.DENSIFY if kmod.DENSIFY in cands
                                                                              else cands[0])
                        kmod._CHOSEN.clear()
                    method = "csr" if impl == "csr" else "auto"
                    a.topology._cache.pop("spmm_plans", None)  # each form records its own plan

                    def fn():
                        with torch.no_grad():
                            return sgk.spmm(a, b, method=method)

                    out = fn()
                    err = relative_error(out, ref)
                    cfg = str(kmod.last_config)
                    us = 1e3 * _probe.graph_ms(fn) if err <= 1e-4 else None
                    log(rows, **base, impl=impl, status="ok" if us else "wrong", us=us, rel_err=err, config=cfg)
                except Exception as e:  # noqa: BLE001
                    log(rows, **base, impl=impl, status="error", error=f"{type(e).__name__}: {e}"[:240])
                finally:
                    if impl == "densify":
                        del kmod._TUNER.choose
                        kmod._CHOSEN.clear()


def section(name: str, dtype):
    def run_section(rows: list, budget: float) -> None:
        BUDGET[0] = budget
        for m, k, n in SHAPES:
            if time.time() - T0 > budget:
                log(rows, section=name, status="skipped", reason="budget")
                return
            one_shape(rows, name, m, k, n, dtype)
    return run_section


def _summary(r: dict) -> str | None:
    if r.get("status") != "ok" or "us" not in r or r["us"] is None:
        return None if r.get("status") == "ok" else f"{r.get('section')} {r.get('m')}x{r.get('k')}x{r.get('n')} {r.get('impl')} {r.get('status')} {r.get('error', r.get('rel_err', ''))}"
    cfg = r.get("config")
    if r["section"] == "sgk":
        kind = (cfg or "").split("kind='")[-1].split("'")[0]
        return (f"sgk   {r['m']}x{r['k']}x{r['n']:<5d} {r['sparsity']:.0%} {r['impl']:8s} {kind:8s} "
                f"{r['us']:8.1f} us  err {r.get('rel_err', 0):.1e}")
    return (f"{r['section']:5s} {r['m']}x{r['k']}x{r['n']:<5d} {r['impl']:12s} {str(cfg or ''):24s} "
            f"{r['us']:8.1f} us  err {r.get('rel_err', 0):.1e}")


def main(argv=None) -> int:
    return _probe.run("probe_dense", __doc__, {"fp32": section("fp32", torch.float32),
                                               "bf16": section("bf16", torch.bfloat16), "sgk": sgk_fp32},
                      _summary, argv, t0=T0)


if __name__ == "__main__":
    sys.exit(main())
