"""Why the densify form's calls cost 44-108 µs of host in the DLMC suite (median 77 µs,
``benchmarks/results/2026-12-01_h200_e2d8ee8/spmm_dlmc_bf16.json``) but 31-39 µs in
``benchmarks/probe_host.py`` (``2026-12-01_h200_b4063b1/probe_host.json``).

For a few DLMC Transformer matrices at N = 256 and 2048, with the tuner forced to the densify form
and then to the bitmap kernel, the harness's own host timer (:func:`sgk.bench.harness.host_time_us`,
20 calls back to back) over: the suite's call exactly (``sgk.spmm(a, b)`` with A built as the suite
builds it, autograd on), the same under ``torch.no_grad()``, the plan's own call, and
``torch.mm`` alone; and how many of 20 suite calls took the full launcher path (the plan's record
refused).

Outcome (seventh session, ``benchmarks/results/2026-12-01_h200_802054a/probe_harness_host.json``):
the suite's own call takes 25-38 µs of host for the densify form and 14-24 µs for the bitmap kernel,
every call on the recorded plan (0 of 20 on the full path), ``torch.mm`` alone 12-17 µs. The 77 µs
median of the e2d8ee8 suite came from that commit's per-stream scratch cache (reverted); the control
run at 07dba97 has a densify median of 31 µs. Run from the repository root:

    PYTHONPATH=src python3 benchmarks/probe_harness_host.py [--budget S] [--out F]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _probe  # noqa: E402
from probe_host import host_us  # noqa: E402
from _probe import log  # noqa: E402

import sgk  # noqa: E402
from sgk.kernels import spmm as kspmm  # noqa: E402

T0 = time.time()
FILES = ["transformer/magnitude_pruning/0.9/body_decoder_layer_0_self_attention_multihead_attention_k_fully_connected.smtx",
         "transformer/magnitude_pruning/0.7/body_decoder_layer_0_ffn_conv1_fully_connected.smtx",
         "transformer/magnitude_pruning/0.8/body_decoder_layer_0_ffn_conv2_fully_connected.smtx"]


def one(rows, path, n, name, cfg):
    from sgk.io import load_smtx

    a32 = load_smtx(path, generator=torch.Generator().manual_seed(0)).cuda()
    a = a32.to(dtype=torch.bfloat16)
    b = torch.randn(a.shape[1], n, device="cuda").bfloat16().contiguous()
    real = kspmm._TUNER.choose
    kspmm._TUNER.choose = lambda key, cands, run, device: cfg if cfg in cands else cands[0]
    kspmm._CHOSEN.clear()
    full = [0]
    real_spmm = kspmm.spmm

    def counting(*args, **kw):
        full[0] += 1
        return real_spmm(*args, **kw)

    try:
        sgk.spmm(a, b)
        row = {"section": "host", "file": path, "n": n, "name": name, "chosen": str(kspmm.last_config)}
        kspmm.spmm = counting
        for _ in range(20):
            sgk.spmm(a, b)
        row["full_path_calls_of_20"] = full[0]
        kspmm.spmm = real_spmm
        row["suite_call_us"] = host_us(lambda: sgk.spmm(a, b))
        with torch.no_grad():
            row["no_grad_us"] = host_us(lambda: sgk.spmm(a, b))
        plans = a.topology._cache.get("spmm_plans", {})
        plan = next(iter(plans.values()), None)
        row["plans"] = len(plans)
        if plan is not None:
            row["plan_us"] = host_us(lambda: plan(a.values, b))
            row["recorded"] = plan._state is not None
        dense = a.to_dense()
        row["mm_us"] = host_us(lambda: torch.mm(dense, b))
        row["empty_us"] = host_us(lambda: torch.empty(a.shape, dtype=torch.bfloat16, device="cuda"))
    finally:
        kspmm.spmm = real_spmm
        kspmm._TUNER.choose = real
        kspmm._CHOSEN.clear()
    log(rows, **row)


def host(rows, budget):
    for f in FILES:
        for n in (256, 2048):
            for name, cfg in (("densify", kspmm.DENSIFY), ("bitmap", kspmm.SpmmConfig(64, 256, 128, 8, 2, "bitmap", 1))):
                if time.time() - T0 > budget:
                    return
                try:
                    one(rows, ".dlmc/" + f, n, name, cfg)
                except Exception as e:  # noqa: BLE001
                    log(rows, section="error", file=f, n=n, name=name, error=f"{type(e).__name__}: {str(e)[:300]}")


def _summary(r):
    if r["section"] != "host":
        return f"  {r}"
    keys = ("suite_call_us", "no_grad_us", "plan_us", "mm_us", "empty_us")
    return (f"  {r['file'].split('/')[3]}/{r['file'].split('/')[-1][14:54]} n={r['n']} {r['name']:8s} full {r['full_path_calls_of_20']}/20 "
            + " ".join(f"{k[:-3]} {r[k]:.1f}" for k in keys if k in r) + f" plans {r.get('plans')} rec {r.get('recorded')}")


if __name__ == "__main__":
    sys.exit(_probe.run("probe_harness_host", __doc__, {"host": host}, _summary, budget=120.0, t0=T0))
