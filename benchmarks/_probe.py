"""The driver the device probes share: run the chosen sections (one failing section does not lose
the others), write every row with the provenance to JSON, print a short table last."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Callable

from sgk.bench.env import collect_environment


def log(rows: list, **r) -> None:
    """Keep a result row and print it as a JSON line (the device log keeps every row)."""
    rows.append(r)
    print(json.dumps(r, default=str), flush=True)


def run(name: str, doc: str, sections: dict[str, Callable], summary: Callable[[dict], str | None], argv=None,
        budget: float = 540.0, t0: float | None = None) -> int:
    """``sections[s](rows, budget)`` for each ``--only`` section; ``summary(row)`` gives a row's line
    in the closing table (None: left out)."""
    t0 = time.time() if t0 is None else t0
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--only", default=",".join(sections))
    p.add_argument("--budget", type=float, default=budget, help="seconds; sections stop starting work after this")
    p.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), f"{name}.json"))
    args = p.parse_args(argv)
    rows: list[dict] = []
    errors = {}
    for section in args.only.split(","):
        try:
            sections[section](rows, args.budget)
        except Exception:  # noqa: BLE001 (one section's failure must not lose the others)
            errors[section] = traceback.format_exc()
            print(errors[section], file=sys.stderr, flush=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": name, "provenance": collect_environment(), "rows": rows, "errors": errors,
                   "seconds": time.time() - t0}, f, indent=1, default=str)
    print(f"\n== {name} ==")
    for r in rows:
        line = summary(r)
        if line:
            print(line)
    if errors:
        print("errors in:", ", ".join(errors))
    return 1 if errors else 0


def graph_ms(fn) -> float:
    """Median ms of ``fn`` replayed from a CUDA graph under do_bench (the L2 flushed before each
    replay; two calls on a side stream first, so that compiles and workspaces stay out of the
    capture). Without CUDA (a smoke run under TRITON_INTERPRET=1) one plain call's wall time."""
    import torch

    if not torch.cuda.is_available():
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3
    import triton

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return float(triton.testing.do_bench(g.replay, warmup=5, rep=25, return_mode="median"))


def block_sparse_problems(seed: int, sparsities=(0.9, 0.5), size: int = 4096, n: int = 4096, bs: int = 64):
    """Issue 5.2's problems on the GPU in bf16: (sparsity, BSR weight, B, the weight dense, the
    float64 reference product) for a size² weight with bs×bs blocks and N = n."""
    import torch

    import sgk

    g = torch.Generator().manual_seed(seed)
    for sparsity in sparsities:
        a = sgk.BSRMatrix.random(size, size, bs, sparsity, dtype=torch.bfloat16, generator=g).cuda()
        b = torch.randn(size, n, generator=g).cuda().bfloat16()
        w = a.to_dense()
        yield sparsity, a, b, w, w.double() @ b.double()


def bitmap_problem(m: int, k: int, n: int, sparsity: float, dtype, device: str):
    """A DLMC-sized SpMM problem for the bitmap-kernel probes, seeded by its shape: (A as a
    CSRMatrix with its bitmap built, B, the float64 reference A·B, A dense for cuBLAS)."""
    import torch

    import sgk

    g = torch.Generator().manual_seed(m * 7 + k * 3 + n + int(sparsity * 100))
    a = sgk.CSRMatrix.random(m, k, sparsity, dtype=dtype, generator=g).to(device)
    b = torch.randn(k, n, generator=g).to(dtype).to(device)
    a.topology.prepare(bitmap=True)
    return a, b, a.to_dense().double() @ b.double(), a.to_dense()
