"""A/B on branch idx-prefetch: the library's tile/1d launch with and without PREFETCH, on the
chain probe's DLMC cases plus every tile/1d fp32 and bf16 choice of the 07dba97/b162524 runs."""
import json, math, sys, time, dataclasses
from pathlib import Path
import torch
sys.path.insert(0, 'benchmarks')
import _probe
from sgk.io.smtx import load_smtx
from sgk.kernels import spmm as k
from sgk.testing import relative_error
ROOT = Path('../..')
DEV = 'cuda' if torch.cuda.is_available() else 'cpu'
out = []
t0 = time.time()
for dtname, run in (("fp32", "2026-12-01_h200_b162524/spmm_dlmc_fp32.json"), ("bf16", "2026-12-01_h200_07dba97/spmm_dlmc_bf16.json")):
    dt = torch.float32 if dtname == "fp32" else torch.bfloat16
    t0 = time.time()
    data = json.loads((ROOT / "benchmarks/results" / run).read_text())
    picked = [c for c in data["cases"] if (cfg := k.parse_config(c["impls"]["sgk"].get("config"))) and cfg.kind in ("tile", "1d")]
    for c in picked[::max(1, len(picked) // 45)]:
        if time.time() - t0 > float(sys.argv[1]) / 2:
            break
        cfg = k.parse_config(c["impls"]["sgk"]["config"])
        g = torch.Generator().manual_seed(1)
        a = load_smtx(ROOT / ".dlmc" / c["path"].split(".dlmc/", 1)[-1], generator=g, device=DEV)
        a = a.to(dt) if dt != torch.float32 else a
        t = a.topology
        b = torch.randn(a.shape[1], c["n"], generator=g).to(DEV, dt)
        ref = a.to_dense().double() @ b.double()
        row = dict(name=c["name"], dtype=dtname, config=str(cfg), n=c["n"], suite_us=1e3 * c["impls"]["sgk"]["ms"])
        for pf in (False, True):
            cf = dataclasses.replace(cfg, prefetch=pf)
            fn = lambda cf=cf: k.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cf,
                                      column_indices16=t.column_indices16 if cf.compact else None, row_bounds=t.row_bounds)
            err = relative_error(fn().float(), ref)
            row[f"err_{pf}"] = err
            row[f"us_{pf}"] = 1e3 * _probe.graph_ms(fn) if err < (1e-4 if dtname == "fp32" else 2e-2) else None
        out.append(row)
        print(json.dumps(row))
Path(sys.argv[2]).write_text(json.dumps(out, indent=1))
for dtname in ("fp32", "bf16"):
    for grp in ("rn50", "transformer"):
        for kind in ("tile", "1d"):
            r = [x["us_True"] / x["us_False"] for x in out if x["dtype"] == dtname and x["name"].startswith(grp)
                 and f"kind='{kind}'" in x["config"] and x["us_True"] and x["us_False"]] if True else []
            r = [x for x in r]
            if r:
                print(f"pfab {dtname} {grp:12s} {kind:4s} n={len(r):3d} pf/plain geomean {math.exp(sum(map(math.log, r)) / len(r)):.3f} min {min(r):.3f} max {max(r):.3f}")
