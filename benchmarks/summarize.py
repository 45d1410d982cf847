"""Markdown tables for docs/performance.md from committed ``sgk bench`` result files.

For each file: its provenance (GPU, versions, git sha, dtype, suite), the geomean speedups of sgk
over each baseline by group (and the Sputnik estimate where anchors matched), the failures, and
which kernel configurations the tuner chose how often. Reads JSON only; needs no GPU.

    python benchmarks/summarize.py benchmarks/results/spmm_dlmc_fp32_*.json [...]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def _fmt(x: float | None, suffix: str = "x") -> str:
    return "–" if x is None else f"{x:.2f}{suffix}"


def summarize(path: Path) -> str:
    data = json.loads(path.read_text())
    prov = data.get("provenance", {})
    cfg = data.get("config", {})
    lines = [
        f"### `{path.parent.name}/{path.name}`",
        "",
        f"{data.get('benchmark', '?')} · suite {cfg.get('suite', prov.get('suite', '?'))} · dtype {cfg.get('dtype', prov.get('dtype', '?'))}"
        f" · {prov.get('gpu') or 'CPU (reference path)'} · torch {prov.get('torch', '?')} · triton {prov.get('triton', '?')}"
        f" · git {str(prov.get('git_sha', '?'))[:10]}",
        "",
    ]
    summary = data.get("summary", {})
    baselines = sorted({b for g in summary.values() for b in g.get("speedup", {})})
    if summary:
        head = ["group", "cases", *[f"vs {b}" for b in baselines], "vs Sputnik (est.)", "sgk TFLOP/s", "failed"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for group, g in summary.items():
            sp = g.get("speedup", {})
            row = [group, str(g.get("cases", "")), *[_fmt(sp.get(b, {}).get("geomean")) for b in baselines],
                   _fmt((g.get("speedup_over_sputnik_est") or {}).get("geomean")),
                   _fmt(g.get("sgk_tflops_geomean"), ""), str(g.get("failed", ""))]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    cases = data.get("cases", [])
    bad = [(c["name"], n, i.get("status"), i.get("message")) for c in cases for n, i in c.get("impls", {}).items()
           if i.get("status") not in ("ok", "n/a")]
    if bad:
        lines.append(f"Failures ({len(bad)}): " + "; ".join(f"{c} {n} {s} ({m})" for c, n, s, m in bad[:10])
                     + (" …" if len(bad) > 10 else ""))
        lines.append("")
    chosen = Counter(c["impls"]["sgk"].get("config") for c in cases if c.get("impls", {}).get("sgk", {}).get("config"))
    if chosen:
        lines.append("Configurations sgk's tuner chose (cases):")
        lines.append("")
        lines += [f"- {n} × `{cfg}`" for cfg, n in chosen.most_common(12)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse_args(argv)
    for f in args.files:
        try:
            print(summarize(f))
        except (OSError, ValueError, KeyError) as e:
            print(f"{f}: cannot summarise: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
