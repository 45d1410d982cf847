"""Benchmarks of sgk against cuBLAS, cuSPARSE and (through anchors) Sputnik.

A benchmark kind (``spmm``, ``sddmm``, ``attention``) is a :class:`Benchmark` dataclass: its configuration,
``get_configs()`` (the cases of a suite) and ``run()`` (check, then time every implementation).
Kinds are registered in :data:`BENCHMARKS`, suites in :data:`SUITES`; ``sgk bench <kind>`` on the
command line (:mod:`sgk.cli`) drives them. Example::

    from sgk.bench import SpmmBenchmark, format_table
    bench = SpmmBenchmark(suite="synthetic", dtype="fp16", filter="transformer", limit=10)
    bench.run()
    print(format_table(bench))
"""
from .anchors import Anchors, find_anchors, load_anchors, speedup_over_sputnik
from .harness import (
    BENCHMARKS,
    DTYPES,
    TOLERANCES,
    Benchmark,
    CaseResult,
    Impl,
    ImplResult,
    Prepared,
    get_benchmark,
    register_benchmark,
)
from .report import format_summary, format_table, geomean, plot_speedups, summarize, to_json, write_json
from .spmm import SpmmBenchmark  # isort: skip  (registration order = order in 'sgk bench --help')
from .sddmm import SddmmBenchmark  # isort: skip
from .attention import AttentionBenchmark  # isort: skip
from .blocksparse import BlockSparseBenchmark  # isort: skip
from .suites import SUITES, Case, dlmc_cases, get_cases, register_suite, synthetic_cases

__all__ = [
    "Anchors",
    "AttentionBenchmark",
    "BlockSparseBenchmark",
    "BENCHMARKS",
    "Benchmark",
    "Case",
    "CaseResult",
    "DTYPES",
    "Impl",
    "ImplResult",
    "Prepared",
    "SUITES",
    "SddmmBenchmark",
    "SpmmBenchmark",
    "TOLERANCES",
    "dlmc_cases",
    "find_anchors",
    "format_summary",
    "format_table",
    "geomean",
    "get_benchmark",
    "get_cases",
    "load_anchors",
    "plot_speedups",
    "register_benchmark",
    "register_suite",
    "speedup_over_sputnik",
    "summarize",
    "synthetic_cases",
    "to_json",
    "write_json",
]
