"""The ``sgk`` command line: ``sgk info`` and ``sgk bench <kind>``.

Run as ``sgk ...`` (console script) or ``python -m sgk ...``. :func:`main` takes an argv list and
returns the exit status, so it can also be called in-process.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from typing import Sequence, TextIO

__all__ = ["main", "build_parser"]

_EXAMPLES = """\
examples:
  sgk info
  sgk bench spmm                                  # synthetic DLMC suite, fp32, sgk vs cuBLAS and cuSPARSE
  sgk bench spmm --suite dlmc --dtype bf16 --impl sgk,cublas_bf16,cusparse --out results.json --plot spmm.png
  sgk bench sddmm --suite dlmc --filter "n=2048" --out sddmm.json
  sgk bench spmm --filter transformer --limit 10
  sgk bench attention --out attention.json --plot attention.png   # L 4k-16k, 90/95/98%, fwd and fwd+bwd
"""

_BENCH_EPILOG_COMMON = """\
Each case is checked against a float64 reference before it is timed (relative L2 error at most
fp32 1e-4, tf32 5e-3, fp16 5e-3, bf16 2e-2); a failing implementation is marked in the table and
the JSON and is not timed. On CUDA, timings are triton.testing.do_bench medians. Without a CUDA GPU
the same command runs the CPU reference path on a few cases with n capped at 64 (timings are CPU,
not comparable). Speedups are time(baseline) / time(sgk): > 1 means sgk is faster.
"""

_BENCH_EPILOG = _BENCH_EPILOG_COMMON + """
Suite 'dlmc' reads every .smtx under --dlmc-dir (default: $SGK_DLMC_DIR, ./.dlmc, ../shared/dlmc);
transformer matrices run at n = 256 and 2048, rn50 layers at n from rn50_batchsizes.txt. Anchors
(--anchors, default the newest ../shared/anchors/dlmc_h100_*.json or ./.dlmc/anchors*.json) add an
estimated speedup over Sputnik: (cusparse_ours / sgk_ours) / (cusparse32 / sputnik), per case.
"""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {v}")
    return v


PLOT_SUFFIXES = (".png", ".pdf", ".svg")
"""What ``--plot`` writes; a path without a suffix gets ``.png`` (as matplotlib would add)."""


def check_output_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse an ``--out`` or ``--plot`` that cannot be written, before any case runs (an error
    after the run would lose it): a directory, a folder that cannot be created or written, a plot
    format that is not written here. Missing folders are created when the file is written.
    ``args.plot`` gets its final name."""
    if getattr(args, "plot", None):
        suffix = os.path.splitext(args.plot)[1]
        if not suffix:
            args.plot = args.plot + ".png"
        elif suffix.lower() not in PLOT_SUFFIXES:
            parser.error(f"--plot {args.plot}: the plot is written as {', '.join(PLOT_SUFFIXES)}, not {suffix}")
        if importlib.util.find_spec("matplotlib") is None:
            parser.error("--plot needs matplotlib (pip install 'sgk[bench]')")
    for flag in ("out", "plot"):
        path = getattr(args, flag, None)
        if not path:
            continue
        if os.path.isdir(path):
            parser.error(f"--{flag} {path}: is a directory; give a file name")
        folder = os.path.dirname(os.path.abspath(path))
        while not os.path.exists(folder):  # the nearest existing folder: the rest is created
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            parser.error(f"--{flag} {path}: {folder} is a file, not a folder")
        if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
            parser.error(f"--{flag} {path}: cannot be written")


def _impl_list(choices: Sequence[str]):
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        if not names:
            raise argparse.ArgumentTypeError("expected a comma-separated list of implementations")
        bad = [n for n in names if n not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown implementation {', '.join(bad)} (choose from {', '.join(choices)})")
        return names

    return parse


def _add_bench_arguments(p: argparse.ArgumentParser, cls) -> None:
    from .bench import DTYPES, SUITES

    suites = [s for s in cls.suites if s in SUITES]
    p.add_argument(
        "--suite",
        choices=suites,
        default=suites[0],
        help="; ".join(f"{s}: {SUITES[s][1]}" for s in suites).replace("%", "%%") + f" (default {suites[0]})",
    )
    dlmc = "dlmc" in suites  # the DLMC directory and the Sputnik anchors belong to that suite alone
    if dlmc:
        p.add_argument("--dlmc-dir", metavar="PATH", help="DLMC directory for --suite dlmc ({model}/{method}/{sparsity}/*.smtx)")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="precision of sgk and of 'cublas' (default fp32)")
    p.add_argument(
        "--impl",
        type=_impl_list(list(cls.impls)),
        default=tuple(cls.default_impls),
        metavar="LIST",
        help=f"comma-separated implementations from {{{','.join(cls.impls)}}} (default {','.join(cls.default_impls)})",
    )
    p.add_argument("--out", metavar="PATH", help="write provenance, per-case results and summary as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of sgk's speedup over each baseline against sparsity")
    p.add_argument("--limit", type=_positive_int, metavar="N", help="run only the first N cases (after --filter)")
    p.add_argument(
        "--filter",
        metavar="SUBSTR",
        help="keep cases whose key, name or group contains SUBSTR (case-insensitive)"
        + (", e.g. transformer, rn50/, 'n=2048', '/0.9/'" if dlmc else ""),
    )
    if dlmc:
        p.add_argument("--anchors", metavar="PATH", help="anchor timings JSON for the Sputnik estimate ('none' to disable)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto", help="where to run (default: CUDA if available)")
    p.add_argument("--seed", type=int, default=0, help="seed for topologies and values (default 0)")
    p.add_argument("--warmup", type=_positive_float, default=25.0, metavar="MS", help="do_bench warm-up time in ms (default 25)")
    p.add_argument("--rep", type=_positive_float, default=100.0, metavar="MS", help="do_bench measuring time in ms (default 100)")
    p.add_argument(
        "--timer",
        choices=["do_bench", "cudagraph"],
        default="do_bench",
        help="do_bench: back-to-back calls, host overhead included, L2 flushed (as the anchors; default); "
        "cudagraph: replayed from a CUDA graph, device time without launch overhead",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    """The ``sgk`` argument parser (subcommands ``info`` and ``bench <kind>``)."""
    from . import __version__
    from .bench import BENCHMARKS

    parser = argparse.ArgumentParser(
        prog="sgk",
        description="sgk: Sparse GPU Kernels (SpMM, SDDMM, sparse softmax in Triton, for PyTorch).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sgk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    sub.add_parser(
        "info",
        help="versions, device, and which path each op takes on this machine",
        description="Print sgk/torch/triton/python/numpy versions, the CUDA device, and which "
        "implementation each op runs on this machine.",
    )
    bench = sub.add_parser(
        "bench",
        help="benchmark an op against cuBLAS / cuSPARSE (and Sputnik anchors)",
        description="Benchmark an sgk op on the DLMC shapes against cuBLAS and cuSPARSE. "
        "Run 'sgk bench KIND --help' for the options of one benchmark.",
        epilog=_BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = bench.add_subparsers(dest="kind", metavar="KIND", title="benchmarks")
    kinds.required = True
    for kind, cls in BENCHMARKS.items():
        impl_lines = "\n".join(f"  {name:<12} {impl.help}" for name, impl in cls.impls.items())
        p = kinds.add_parser(
            kind,
            help=cls.help,
            description=f"sgk bench {kind}: {cls.help}.",
            epilog=f"implementations:\n{impl_lines}\n\n"
            + (getattr(cls, "cli_epilog", None) or (_BENCH_EPILOG if "dlmc" in cls.suites else _BENCH_EPILOG_COMMON)),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # A kind with its own options (e.g. attention) adds them itself; the others share these.
        add_arguments = getattr(cls, "add_cli_arguments", None)
        if add_arguments is not None:
            add_arguments(p)
        else:
            _add_bench_arguments(p, cls)
        p.set_defaults(_parser=p)
    return parser


# -- sgk info ----------------------------------------------------------------------------------
def _kv(out: TextIO, key: str, value: object) -> None:
    print(f"{key:<19}{value}", file=out)


def cmd_info(out: TextIO | None = None) -> int:
    """Print versions, the CUDA device and the op paths (to ``out``, default stdout)."""
    out = out or sys.stdout
    import numpy
    import torch

    from .bench.env import device_properties, sgk_version, triton_version
    from . import __file__ as sgk_file

    _kv(out, "sgk", f"{sgk_version()} ({os.path.dirname(sgk_file)})")
    _kv(out, "torch", torch.__version__)
    tv = triton_version()
    _kv(out, "triton", tv or "not installed")
    _kv(out, "python", sys.version.split()[0])
    _kv(out, "numpy", numpy.__version__)
    props = device_properties()
    if props is None:
        why = "torch built without CUDA" if torch.version.cuda is None else "no CUDA device visible"
        _kv(out, "CUDA", f"not available ({why})")
    else:
        _kv(out, "CUDA", f"available (CUDA {torch.version.cuda}, {props['device_count']} device(s))")
        _kv(out, "device", props["name"])
        _kv(out, "compute capability", props["compute_capability"])
        _kv(out, "SMs", props["sm_count"])
        _kv(out, "memory", f"{props['memory_gib']} GiB")
    interp = os.environ.get("TRITON_INTERPRET")
    _kv(out, "TRITON_INTERPRET", f"{interp} (set)" if interp not in (None, "", "0") else (interp or "not set"))
    print("op paths on this machine (method='auto'):", file=out)
    for line in _op_paths(props is not None, tv is not None, interp not in (None, "", "0")):
        print(f"  {line}", file=out)
    return 0


_KERNEL_OPS = {"spmm": "spmm", "sddmm": "sddmm", "sparse_softmax": "softmax", "bsr_spmm": "bsr", "bsr_dsmm": "bsr", "bsr_sddmm": "bsr"}
_REFERENCES = {"bsr_spmm": "bsr_spmm_coo", "bsr_dsmm": "bsr_spmm_coo (transposed)", "bsr_sddmm": "bsr_sddmm_coo"}
_COMPOSED = {"attention": "sddmm → sparse_softmax → spmm, each on its path here"}


def _op_paths(cuda: bool, triton_ok: bool, interpret: bool) -> list[str]:
    """One line per public op: what CUDA tensors and CPU tensors run (kernel modules are looked
    up, not imported)."""
    import importlib.util

    try:
        from . import ops

        names = [n for n in getattr(ops, "__all__", []) if n != "reference" and callable(getattr(ops, n, None))]
    except Exception as e:  # noqa: BLE001 - info must always print
        return [f"sgk.ops failed to import: {type(e).__name__}: {e}"]
    lines = []
    width = max((len(n) for n in names), default=4)
    for name in names:
        kname = _KERNEL_OPS.get(name)
        module = f"{__package__}.kernels.{kname}" if kname else None
        has_kernel = module is not None and importlib.util.find_spec(module) is not None
        if name in _COMPOSED:
            cuda_path = cpu_path = _COMPOSED[name]
        elif not has_kernel:
            cuda_path = cpu_path = "torch ops on the tensors' device (no kernel needed)"
        else:
            if not cuda:
                cuda_path = "n/a (no CUDA GPU)"
            elif not triton_ok:
                cuda_path = "pure-torch reference (triton is not installed)"
            else:
                cuda_path = f"Triton kernel {module} (fp32/fp16/bf16; float64 → reference)"
            cpu_path = f"pure-torch reference {__package__}.ops.reference.{_REFERENCES.get(name, name)}"
            if interpret and triton_ok:
                cpu_path += " (method='triton' → Triton interpreter)"
        lines.append(f"{name:<{width}}  CUDA tensors: {cuda_path}")
        lines.append(f"{'':<{width}}  CPU tensors:  {cpu_path}")
    return lines


# -- sgk bench ---------------------------------------------------------------------------------
def _resolve_anchors(arg: str | None, parser: argparse.ArgumentParser):
    from .bench.anchors import find_anchors, load_anchors

    if arg is not None and arg.lower() == "none":
        return None
    path = arg or find_anchors()
    if path is None:
        return None
    if not os.path.isfile(path):
        parser.error(f"--anchors {path}: no such file")
    try:
        return load_anchors(path)
    except (OSError, ValueError) as e:
        if arg is None:
            print(f"warning: ignoring anchors {path}: {e}", file=sys.stderr)
            return None
        parser.error(f"--anchors {path}: {e}")


def _make_benchmark(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The Benchmark object and its cases from parsed arguments (bad values → argparse errors)."""
    from .bench import get_benchmark
    from .bench.suites import find_dlmc_dir

    cls = get_benchmark(args.kind)
    try:
        bench = cls(
            suite=args.suite,
            dtype=args.dtype,
            impl_names=args.impl,
            dlmc_dir=getattr(args, "dlmc_dir", None),
            limit=args.limit,
            filter=args.filter,
            device=args.device,
            seed=args.seed,
            warmup=args.warmup,
            rep=args.rep,
            timer=args.timer,
        )
        cases = bench.get_configs()
        if args.suite == "dlmc":
            bench.dlmc_dir = str(find_dlmc_dir(args.dlmc_dir))
    except ValueError as e:
        parser.error(str(e))
    check_output_paths(args, parser)
    if getattr(args, "dlmc_dir", None) is not None and args.suite != "dlmc":
        parser.error(f"--dlmc-dir is for --suite dlmc, not --suite {args.suite}")
    anchors = _resolve_anchors(args.anchors, parser) if hasattr(args, "anchors") else None
    if anchors is not None and not bench.on_gpu:
        if args.anchors is not None:
            print("note: anchors ignored on the CPU reference path (timings not comparable)", file=sys.stderr)
        anchors = None
    bench.anchors = anchors
    return bench, cases


def _print_header(bench, cases, env: dict, out: TextIO) -> None:
    import torch

    from .bench.harness import CPU_NOTICE

    device = env["gpu"] if bench.on_gpu else "CPU (reference path)"
    print(
        f"sgk bench {bench.kind}: suite {bench.suite}, dtype {bench.dtype}, {len(cases)} cases, impls "
        f"{','.join(bench.impl_names)} on {device} (torch {torch.__version__}, triton {env['triton']})"
        + (f", timer {bench.timer}" if bench.on_gpu else ""),
        file=out,
    )
    if not bench.on_gpu:
        print(CPU_NOTICE, file=out)
    cols = bench.anchor_columns.get(bench.dtype) if bench.anchors is not None else None
    if cols is not None:  # the blocksparse and decode suites have no Sputnik anchors
        print(f"anchors: {bench.anchors.path} ({len(bench.anchors)} rows; Sputnik estimate from {cols[0]}/{cols[1]})", file=out)
        if bench.timer != "do_bench":
            print(f"note: the anchors were timed with do_bench; with --timer {bench.timer} the Sputnik estimate mixes timers", file=out)
    out.flush()


def _report(bench, args: argparse.Namespace, env: dict, out: TextIO) -> bool:
    """Table, summary and failures to ``out``; JSON and PNG when asked (False: one could not be
    written)."""
    from .bench.report import format_failures, format_summary, format_table, plot_speedups, summarize, to_json, write_json

    summary = summarize(bench)
    print(file=out)
    print(format_table(bench), file=out)
    print(file=out)
    print(format_summary(bench, summary), file=out)
    failures = format_failures(bench)
    if failures:
        print("\nfailures:\n" + failures, file=out)
    ok = True
    if args.out:
        ok &= write_output(args.out, "--out", lambda: write_json(args.out, to_json(bench, env, summary)), out)
    if args.plot:
        ok &= write_output(args.plot, "--plot", lambda: plot_speedups(bench, args.plot, title_device=env["gpu"] if bench.on_gpu else None), out)
    return ok


def write_output(path: str, flag: str, write, out: TextIO) -> bool:
    """Run ``write`` (a JSON or plot writer); "wrote PATH", or an error line naming the flag on
    stderr (the table above is kept) and False."""
    try:
        write()
    except OSError as e:
        print(f"error: {flag} {path}: {e.strerror or e}", file=sys.stderr)
        return False
    lead = "\n" if flag == "--out" else ""  # the JSON line follows the tables after a blank line
    print(f"{lead}wrote {path}", file=out)
    return True


def cmd_bench(args: argparse.Namespace, argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one benchmark kind; print the table and summary (to ``out``, progress to ``err``);
    write JSON / PNG when asked. Exit status: 0, 1 when an sgk case failed its check or raised,
    130 when interrupted (the finished cases are still reported)."""
    from .bench import get_benchmark
    from .bench.env import collect_environment

    out, err = out or sys.stdout, err or sys.stderr
    custom_run = getattr(get_benchmark(args.kind), "cli_run", None)
    if custom_run is not None:  # a kind with its own cases and report (e.g. attention)
        return custom_run(args, ["sgk", *argv], out, err)
    bench, cases = _make_benchmark(args, args._parser)
    env = collect_environment(["sgk", *argv])
    _print_header(bench, cases, env, out)
    interrupted = False
    try:
        bench.run(progress=None if args.quiet else err, cases=cases)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: reporting the {len(bench.results)} finished cases", file=err)
    written = _report(bench, args, env, out)
    if interrupted:
        return 130
    return 1 if not written or any(r.status in ("failed", "error") for r in bench.results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sgk`` console script and ``python -m sgk``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        return cmd_info()
    if args.command == "bench":
        return cmd_bench(args, argv)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2
