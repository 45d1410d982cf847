"""Reporting benchmark results: the per-case table, geomean summaries, JSON and a plot."""
from __future__ import annotations

import json
import math
import os
import re
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .harness import Benchmark, CaseResult

__all__ = [
    "geomean",
    "summarize",
    "format_table",
    "format_summary",
    "format_failures",
    "to_json",
    "write_json",
    "plot_speedups",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 1
ALL = "all"


def geomean(values: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive finite values (None and non-positive entries skipped);
    None when there are none."""
    logs = [math.log(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def _natural(text: str) -> tuple:
    """Sort key reading runs of digits as numbers ("N=8" before "N=16")."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _groups(results: Sequence["CaseResult"]) -> list[str]:
    seen: dict[str, None] = {}
    for r in results:
        seen.setdefault(r.case.group, None)
    order = {"rn50": 0, "transformer N=256": 1, "transformer N=2048": 2}
    return sorted(seen, key=lambda g: (order.get(g, 3), _natural(g))) + [ALL]


def _level_groups(results: Sequence["CaseResult"]) -> dict[str, Callable[["CaseResult"], bool]]:
    """For the decode suite (grouped by N), the cross-section by sparsity the issue's curve asks
    for: "decode 80%" and so on; nothing for other suites."""
    if not results or any(r.case.model != "decode" for r in results):
        return {}
    levels = sorted({r.case.level for r in results}, key=float)
    return {f"decode {float(lv):.0%}": (lambda r, lv=lv: r.case.level == lv) for lv in levels}


def summarize(bench: "Benchmark") -> dict[str, Any]:
    """Per group (rn50, transformer N=256, transformer N=2048, others..., all): case count,
    failures, geomean speedup of sgk over each baseline, geomean estimated speedup over Sputnik,
    and geomean sgk TFLOP/s. Each geomean comes with the number of cases it covers."""
    out: dict[str, Any] = {}
    members = {g: (lambda r, g=g: g == ALL or r.case.group == g) for g in _groups(bench.results)[:-1]}
    members.update(_level_groups(bench.results))
    members[ALL] = lambda r: True
    for g, member in members.items():
        rs = [r for r in bench.results if member(r)]
        entry: dict[str, Any] = {
            "cases": len(rs),
            "failed": sum(r.status in ("failed", "error") for r in rs),
            "speedup": {},
        }
        for b in bench.baselines:
            vals = [r.speedup(b) for r in rs]
            entry["speedup"][b] = {"geomean": geomean(vals), "count": sum(v is not None for v in vals)}
        est = [r.sputnik_est for r in rs]
        entry["speedup_over_sputnik_est"] = {"geomean": geomean(est), "count": sum(v is not None for v in est)}
        tf = [r.tflops for r in rs]
        entry["sgk_tflops_geomean"] = geomean(tf)
        out[g] = entry
    return out


# -- text ------------------------------------------------------------------------------------------
def _fmt_ms(r: "CaseResult", name: str) -> str:
    ir = r.impls.get(name)
    if ir is None:
        return "-"
    if ir.ok:
        return f"{ir.ms:.4f}"
    return {"failed": "FAIL", "n/a": "n/a"}.get(ir.status, "ERR")


def _fmt_x(v: float | None) -> str:
    return f"{v:.2f}x" if v is not None else "-"


def _fmt_num(v: float | None, spec: str) -> str:
    return format(v, spec) if v is not None else "-"


def _impl_header(bench: "Benchmark", name: str) -> str:
    """``cusparse[fp32]`` when an implementation runs at another precision than --dtype."""
    precisions = {ir.precision for r in bench.results for n, ir in r.impls.items() if n == name and ir.precision}
    if len(precisions) == 1:
        p = precisions.pop()
        if p != bench.dtype and name not in ("cublas_tf32", "cublas_bf16"):
            return f"{name}[{p}]"
    return name


def _render(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def format_table(bench: "Benchmark") -> str:
    """One row per case: name, m, k, n, sparsity, ms per implementation, sgk TFLOP/s and GB/s,
    speedup of sgk over each baseline (and over Sputnik, estimated, when anchors matched)."""
    has_est = any(r.sputnik_est is not None for r in bench.results)
    header = ["case", "m", "k", "n", "sparsity"]
    header += [f"{_impl_header(bench, n)} ms" for n in bench.impl_names]
    has_dram = any(r.pct_dram is not None for r in bench.results)
    if "sgk" in bench.impl_names:
        header += ["TFLOP/s", "GB/s"] + (["% DRAM"] if has_dram else []) + [f"vs {b}" for b in bench.baselines]
        if has_est:
            header.append("vs sputnik(est)")
    header.append("status")
    rows = []
    for r in bench.results:
        c = r.case
        row = [c.short_name, str(c.m), str(c.k), str(c.n), f"{c.sparsity:.3f}"]
        row += [_fmt_ms(r, n) for n in bench.impl_names]
        if "sgk" in bench.impl_names:
            row += [_fmt_num(r.tflops, ".3g"), _fmt_num(r.gbps, ".3g")] + ([_fmt_num(r.pct_dram, ".0f")] if has_dram else [])
            row += [_fmt_x(r.speedup(b)) for b in bench.baselines]
            if has_est:
                row.append(_fmt_x(r.sputnik_est))
        row.append(r.status)
        rows.append(row)
    return _render(header, rows)


def format_summary(bench: "Benchmark", summary: dict[str, Any] | None = None) -> str:
    """Geomean speedups of sgk per group (time_baseline / time_sgk; > 1 means sgk is faster)."""
    summary = summary if summary is not None else summarize(bench)
    if "sgk" not in bench.impl_names:
        return "(no sgk timings: no speedups)"
    has_est = any(v["speedup_over_sputnik_est"]["count"] for v in summary.values())
    header = ["group", "cases"] + [f"vs {b}" for b in bench.baselines]
    if has_est:
        header.append("vs sputnik(est)")
    header += ["sgk TFLOP/s", "failed"]
    rows = []
    for g, v in summary.items():
        row = [g, str(v["cases"])] + [_fmt_x(v["speedup"][b]["geomean"]) for b in bench.baselines]
        if has_est:
            est = v["speedup_over_sputnik_est"]
            row.append(f"{_fmt_x(est['geomean'])} ({est['count']})" if est["count"] else "-")
        row += [_fmt_num(v["sgk_tflops_geomean"], ".3g"), str(v["failed"])]
        rows.append(row)
    return "geomean speedup of sgk (time of baseline / time of sgk)\n" + _render(header, rows)


def format_failures(bench: "Benchmark") -> str:
    """One line per failed or erroring implementation (empty when all passed)."""
    lines = []
    for r in bench.results:
        if r.error:
            lines.append(f"{r.case.name}: {r.error}")
        for name, ir in r.impls.items():
            if ir.status not in ("ok", "n/a"):
                lines.append(f"{r.case.name}: {name} {ir.status}: {ir.message}")
    return "\n".join(lines)


# -- JSON ------------------------------------------------------------------------------------------
def to_json(bench: "Benchmark", environment: dict[str, Any], summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--out`` document: provenance, configuration, per-case results and summary geomeans."""
    return {
        "schema": SCHEMA_VERSION,
        "benchmark": bench.kind,
        "provenance": {**environment, "dtype": bench.dtype, "suite": bench.suite},
        "config": {
            "kind": bench.kind,
            "suite": bench.suite,
            "dtype": bench.dtype,
            "impls": list(bench.impl_names),
            "impl_help": {n: bench.impls[n].help for n in bench.impl_names},
            "device": str(bench.torch_device),
            "reduced_cpu_path": not bench.on_gpu,
            "filter": bench.filter,
            "limit": bench.limit,
            "seed": bench.seed,
            "warmup_ms": bench.warmup,
            "rep_ms": bench.rep,
            "timer": _timer_name(bench),
            "tolerances": _tolerances(),
            "anchors": bench.anchors.path if bench.anchors is not None else None,
            "anchor_columns": bench.anchor_columns.get(bench.dtype) if bench.anchors is not None else None,
            "dlmc_dir": bench.dlmc_dir,
            "dram_read_gbps": bench.dram_read_gbps() if bench.reports_dram() else None,
        },
        "cases": [r.to_dict(bench.baselines) for r in bench.results],
        "summary": summary if summary is not None else summarize(bench),
        "warnings": list(bench.warnings),
    }


def _timer_name(bench: "Benchmark") -> str:
    if not bench.on_gpu:
        return "time.perf_counter median"
    if bench.timer == "cudagraph":
        return "triton.testing.do_bench_cudagraph median"
    return "triton.testing.do_bench median (L2 flushed)"


def _tolerances() -> dict[str, float]:
    from .harness import TOLERANCES

    return dict(TOLERANCES)


def write_json(path: str | os.PathLike, document: dict[str, Any]) -> None:
    """Write ``document`` as indented JSON (directories created; NaN/inf written as null)."""
    d = os.path.dirname(os.fspath(path))
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, "w") as f:
        json.dump(_clean(document), f, indent=1, allow_nan=False)
        f.write("\n")


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


# -- plot ------------------------------------------------------------------------------------------
_MARKERS = {"rn50": "o", "transformer": "^"}
_EXTRA_MARKERS = "sDvP*X<>"


def plot_speedups(bench: "Benchmark", path: str | os.PathLike, title_device: str | None = None) -> None:
    """PNG of sgk's speedup over each baseline (one panel each, log scale) against sparsity: one
    marker per model, one colour per group, a line at 1× and the group geomeans in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(b, f"vs {b}", lambda r, b=b: r.speedup(b)) for b in bench.baselines]
    if any(r.sputnik_est is not None for r in bench.results):
        panels.append(("sputnik", "vs Sputnik (estimated from anchors)", lambda r: r.sputnik_est))
    if not panels:
        panels = [("none", "no baselines", lambda r: None)]
    groups = [g for g in _groups(bench.results) if g != ALL]
    models = sorted({r.case.model for r in bench.results})
    markers = {m: _MARKERS.get(m) or _EXTRA_MARKERS[i % len(_EXTRA_MARKERS)] for i, m in enumerate(models)}
    colors = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    ncols = len(panels) if len(panels) <= 3 else (2 if len(panels) == 4 else 3)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.8 * ncols + 0.6, 4.0 * nrows + 0.5), squeeze=False, sharey=True
    )
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, label, get) in zip(flat, panels):
        _plot_panel(ax, bench, groups, markers, colors, get)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("sparsity")
        ax.axhline(1.0, color="black", lw=1, ls="--", zorder=0)
        ax.grid(True, which="major", alpha=0.3)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    for row in axes:
        row[0].set_ylabel("speedup of sgk (× faster)")
    device = title_device or ("CPU reference path (not comparable)" if not bench.on_gpu else "GPU")
    fig.suptitle(f"sgk {bench.kind} ({bench.dtype}, suite {bench.suite}) on {device}", fontsize=11)
    fig.tight_layout()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)  # as write_json does
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_panel(ax, bench: "Benchmark", groups, markers, colors, get) -> None:
    any_point = False
    for gi, g in enumerate(groups):
        rs = [r for r in bench.results if r.case.group == g]
        pts = [(r.case.nominal_sparsity, get(r), r.case.model) for r in rs]
        pts = [(x, y, m) for x, y, m in pts if y is not None and y > 0]
        gm = geomean(y for _, y, _ in pts)
        lab = f"{g} (geomean {gm:.2f}x)" if gm else f"{g} (-)"
        # A small x offset per group keeps groups at the same sparsity apart.
        dx = (gi - (len(groups) - 1) / 2) * 0.003
        for model in sorted({m for _, _, m in pts}):
            xs = [x + dx for x, _, m in pts if m == model]
            ys = [y for _, y, m in pts if m == model]
            ax.scatter(xs, ys, marker=markers[model], color=colors[g], s=22, alpha=0.75, label=lab, edgecolors="none")
            lab = None
            any_point = True
        if not pts:
            ax.scatter([], [], marker=markers.get(rs[0].case.model, "o") if rs else "o", color=colors[g], s=22, label=lab)
    if any_point:
        ax.set_yscale("log")
        _log_ticks(ax)
    ax.legend(fontsize=7, loc="best")


def _xfmt():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:g}x")


def _log_ticks(ax) -> None:
    """Labelled ticks at 1, 2 and 5 of each decade (a speedup axis spans few decades)."""
    from matplotlib.ticker import LogLocator, NullFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(_xfmt())
    ax.yaxis.set_minor_formatter(NullFormatter())
