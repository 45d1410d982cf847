"""The benchmark harness: a benchmark is a dataclass of configs and results.

``Benchmark.get_configs()`` lists the cases (suite → filter → limit), ``Benchmark.run()`` runs
them. For every case, every implementation (``Impl``) is prepared outside the timed region, its
output is checked against a float64 reference, and only then is it timed:
``triton.testing.do_bench`` (median) on CUDA, ``time.perf_counter`` (median of a few runs) on the
CPU reference path. A failed check or an exception marks that implementation of that case, and
the run goes on.

Benchmark kinds (``spmm``, ``sddmm``, later ``attention``...) subclass :class:`Benchmark`, fill
in :attr:`Benchmark.impls` and :meth:`Benchmark.make_inputs`, and register with
:func:`register_benchmark`.
"""
from __future__ import annotations

import contextlib
import gc
import math
import statistics
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, ContextManager, Iterator, TextIO

import torch

from ..checks import is_int, is_real
from ..csr import CSRMatrix
from .anchors import Anchors, speedup_over_sputnik
from .suites import Case, get_cases

__all__ = [
    "CachedInputs",
    "DTYPES",
    "TOLERANCES",
    "PRECISION_DTYPES",
    "Impl",
    "Prepared",
    "ImplResult",
    "CaseResult",
    "Benchmark",
    "BENCHMARKS",
    "register_benchmark",
    "get_benchmark",
    "relative_error",
    "tf32_matmul",
    "cuda_time_ms",
    "cpu_time_ms",
    "CPU_NOTICE",
    "TIMERS",
]

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""The ``--dtype`` choices."""

PRECISION_DTYPES: dict[str, torch.dtype] = {**DTYPES, "tf32": torch.float32}
"""Input dtype of each precision an implementation can run at (TF32 takes fp32 inputs)."""

TOLERANCES: dict[str, float] = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 5e-3, "bf16": 2e-2}
"""Largest accepted ‖out − ref‖ / ‖ref‖ against the float64 reference, by precision."""

CPU_NOTICE = "no CUDA GPU: running the reference path at reduced size (timings are CPU, not comparable)"


# -- checking and timing ------------------------------------------------------------------------
def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """‖out − ref‖₂ / ‖ref‖₂ in float64 (inf when out is not finite or shapes differ)."""
    if tuple(out.shape) != tuple(ref.shape):
        return math.inf
    out64 = out.detach().to(torch.float64)
    if not bool(torch.isfinite(out64).all()):
        return math.inf
    den = float(torch.linalg.vector_norm(ref))
    num = float(torch.linalg.vector_norm(out64 - ref))
    return num / den if den > 0 else num


@contextlib.contextmanager
def tf32_matmul(enabled: bool) -> Iterator[None]:
    """Turn TF32 for cuBLAS fp32 matmuls on or off, restoring the previous setting afterwards.

    Uses ``torch.backends.cuda.matmul.fp32_precision`` where it exists (torch >= 2.9; mixing it with
    the legacy ``allow_tf32`` flag is an error there), else ``allow_tf32``.
    """
    mm = torch.backends.cuda.matmul
    try:
        old = mm.fp32_precision
    except (AttributeError, RuntimeError):
        old = None
    if old is not None:
        mm.fp32_precision = "tf32" if enabled else "ieee"
        try:
            yield
        finally:
            mm.fp32_precision = old
        return
    old_flag = mm.allow_tf32
    mm.allow_tf32 = enabled
    try:
        yield
    finally:
        mm.allow_tf32 = old_flag


TIMERS = ("do_bench", "cudagraph")
"""``do_bench``: back-to-back calls, host launch overhead included, L2 flushed (as the anchors).
``cudagraph``: the calls replayed from a CUDA graph: device time without Python/launch overhead."""


HOST_TIMED_MS = 0.5
"""Calls faster than this (ms) also get their host time recorded: under do_bench a call whose host
time outlasts the L2 flush between calls (~60 µs of GPU time on the H200) is timed as host time."""


def host_time_us(fn: Callable[[], Any], calls: int = 20) -> float:
    """Host time per call of ``fn`` in µs: ``calls`` calls back to back without synchronising (the
    GPU work queues behind), then one synchronisation outside the timed span."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / calls * 1e6


def cuda_time_ms(fn: Callable[[], Any], warmup: float = 25, rep: float = 100, timer: str = "do_bench") -> float:
    """Median time of ``fn`` in ms by ``triton.testing.do_bench`` (L2 flushed between runs) or,
    with ``timer="cudagraph"``, by ``triton.testing.do_bench_cudagraph``."""
    import triton.testing

    if timer == "cudagraph":
        return float(triton.testing.do_bench_cudagraph(fn, rep=rep, return_mode="median"))
    return float(triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def cpu_time_ms(fn: Callable[[], Any], reps: int = 5, budget_s: float = 2.0) -> float:
    """Median wall time of ``fn`` in ms over up to ``reps`` runs after one warm-up run (stops early
    once ``budget_s`` is spent)."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() > deadline:
            break
    return statistics.median(times)


# -- implementations and results ----------------------------------------------------------------
@dataclass
class Prepared:
    """An implementation ready to time: ``fn`` is the timed closure (inputs already built),
    ``error(out)`` its relative error against the float64 reference, ``context`` a context
    manager factory wrapped around both the check and the timing (e.g. TF32 on/off)."""

    fn: Callable[[], Any]
    precision: str
    error: Callable[[Any], float]
    context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    describe: Callable[[], str | None] | None = None  # after a run: what ran (e.g. the tuner's choice)


@dataclass
class CachedInputs:
    """Base of a case's inputs: what is derived per precision (casts, dense copies, float64
    references) is built on first use by :meth:`_get` and cached, so implementations that share a
    precision share the work."""

    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)

    def _get(self, what: str, precision: str, make: Callable[[torch.dtype], Any]) -> Any:
        key = (what, str(PRECISION_DTYPES[precision]))
        if key not in self._cache:
            self._cache[key] = make(PRECISION_DTYPES[precision])
        return self._cache[key]


@dataclass(frozen=True)
class Impl:
    """A named implementation of a benchmark kind.

    ``prepare(inputs, dtype)`` builds what the timed closure needs (outside the timed region) and
    returns a :class:`Prepared`; ``dtype`` is the run's ``--dtype`` (the implementation may run at
    another precision, e.g. cuSPARSE always fp32).
    """

    name: str
    help: str
    prepare: Callable[[Any, str], Prepared]
    baseline: bool = True  # compared against sgk in speedups


@dataclass
class ImplResult:
    """One implementation on one case."""

    name: str
    status: str  # "ok" | "failed" (check) | "error" (exception) | "n/a" (no form for this case)
    precision: str | None = None
    ms: float | None = None
    rel_err: float | None = None
    tol: float | None = None
    message: str | None = None
    config: str | None = None  # what ran, when the implementation says (sgk: the chosen kernel configuration)
    host_us: float | None = None  # host time per call (GPU runs, calls under HOST_TIMED_MS): see host_time_us

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.ms is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "precision": self.precision,
            "ms": self.ms,
            "rel_err": _finite_or_none(self.rel_err),
            "tol": self.tol,
            "message": self.message,
            "config": self.config,
            "host_us": self.host_us,
        }


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@dataclass
class CaseResult:
    """All implementations on one case, with the derived metrics of sgk."""

    case: Case
    impls: dict[str, ImplResult] = field(default_factory=dict)
    error: str | None = None  # building the inputs failed
    row_cv: float | None = None  # measured on the topology
    tflops: float | None = None  # useful TFLOP/s of sgk: 2·nnz·n / time
    gbps: float | None = None  # sgk bytes moved (counted) / time
    pct_peak: float | None = None  # sgk TFLOP/s as a share of the device's dense peak, in %
    pct_dram: float | None = None  # sgk GB/s as a share of the DRAM read rate measured in the run, in %
    sputnik_est: float | None = None  # estimated speedup of sgk over Sputnik (anchors)
    anchor: dict[str, Any] | None = None  # the matched anchor row's timings

    def ms(self, name: str) -> float | None:
        r = self.impls.get(name)
        return r.ms if r is not None and r.ok else None

    def speedup(self, baseline: str, over: str = "sgk") -> float | None:
        """time(baseline) / time(sgk), or None when either was not timed."""
        a, b = self.ms(over), self.ms(baseline)
        return b / a if a and b else None

    @property
    def status(self) -> str:
        """ok, failed (an sgk check failed), error (sgk raised or inputs failed), partial (a baseline
        failed)."""
        if self.error:
            return "error"
        sgk_res = self.impls.get("sgk")
        if sgk_res is not None and sgk_res.status != "ok":
            return sgk_res.status
        if any(r.status not in ("ok", "n/a") for r in self.impls.values()):
            return "partial"
        return "ok"

    def to_dict(self, baselines: tuple[str, ...]) -> dict[str, Any]:
        c = self.case
        return {
            "name": c.name,
            "key": c.key,
            "group": c.group,
            "model": c.model,
            "method": c.method,
            "level": c.level,
            "layer": c.layer,
            "source": c.source,
            "path": c.path,
            "m": c.m,
            "k": c.k,
            "n": c.n,
            "n_full": c.n_full,
            "nnz": c.nnz,
            "sparsity": c.sparsity,
            "row_cv_target": c.row_cv,
            "row_cv": self.row_cv,
            "status": self.status,
            "error": self.error,
            "impls": {k: v.to_dict() for k, v in self.impls.items()},
            "sgk_tflops": self.tflops,
            "sgk_gbps": self.gbps,
            "sgk_pct_peak": self.pct_peak,
            "sgk_pct_dram": self.pct_dram,
            "speedup": {b: self.speedup(b) for b in baselines},
            "speedup_over_sputnik_est": self.sputnik_est,
            "anchor": self.anchor,
        }


# -- the benchmark base class --------------------------------------------------------------------
BENCHMARKS: dict[str, type["Benchmark"]] = {}
"""Registered benchmark kinds by name (``sgk bench <kind>``)."""


def register_benchmark(cls: type["Benchmark"]) -> type["Benchmark"]:
    """Class decorator adding a :class:`Benchmark` subclass to :data:`BENCHMARKS` under ``cls.kind``."""
    BENCHMARKS[cls.kind] = cls
    return cls


def get_benchmark(kind: str) -> type["Benchmark"]:
    if kind not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {kind!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[kind]


@dataclass
class Benchmark:
    """A benchmark: its configuration, its cases (:meth:`get_configs`) and its results (:meth:`run`).

    Subclasses set :attr:`kind`, :attr:`impls`, :attr:`anchor_columns` and implement
    :meth:`make_inputs` (and :meth:`bytes_moved` for GB/s).
    """

    kind: ClassVar[str] = ""
    help: ClassVar[str] = ""
    impls: ClassVar[dict[str, Impl]] = {}
    default_impls: ClassVar[tuple[str, ...]] = ("sgk", "cublas", "cusparse")
    suites: ClassVar[tuple[str, ...]] = ("synthetic", "dlmc")
    anchor_columns: ClassVar[dict[str, tuple[str, str]]] = {}
    """``--dtype`` → (anchor cuSPARSE column, anchor Sputnik column) for the Sputnik estimate."""

    suite: str = "synthetic"
    dtype: str = "fp32"
    impl_names: tuple[str, ...] = ()
    dlmc_dir: str | None = None
    limit: int | None = None
    filter: str | None = None
    device: str = "auto"  # auto | cuda | cpu
    seed: int = 0
    warmup: float = 25.0  # ms, do_bench
    rep: float = 100.0  # ms, do_bench
    timer: str = "do_bench"  # see TIMERS
    cpu_cases: int = 4  # cases run on the CPU reference path when --limit is not given
    cpu_n_cap: int = 64  # n is capped to this on the CPU reference path
    cpu_elements_cap: int = 1 << 20  # generated matrices are shrunk to this many elements there (Case.reduced)
    anchors: Anchors | None = None
    results: list[CaseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.impl_names:
            self.impl_names = tuple(self.default_impls)
        self.impl_names = tuple(self.impl_names)
        if self.suite not in self.suites:
            raise ValueError(f"{self.kind}: unknown suite {self.suite!r}; choose from {', '.join(self.suites)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"{self.kind}: unknown dtype {self.dtype!r}; choose from {', '.join(DTYPES)}")
        bad = [n for n in self.impl_names if n not in self.impls]
        if bad:
            raise ValueError(f"{self.kind}: unknown impl {', '.join(bad)}; choose from {', '.join(self.impls)}")
        if self.timer not in TIMERS:
            raise ValueError(f"{self.kind}: timer must be one of {', '.join(TIMERS)}, got {self.timer!r}")
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"{self.kind}: device must be auto, cuda or cpu, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{self.kind}: --device cuda but no CUDA GPU is available")
        # the CLI checks these too; the Python API (sgk.bench) gets the same errors
        if self.limit is not None and (not is_int(self.limit) or self.limit <= 0):
            raise ValueError(f"{self.kind}: limit must be a positive integer or None, got {self.limit!r}")
        if self.filter is not None and not isinstance(self.filter, str):
            raise ValueError(f"{self.kind}: filter must be a string or None, got {type(self.filter).__name__}")
        for name in ("warmup", "rep"):
            v = getattr(self, name)
            if not (is_real(v) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{self.kind}: {name} must be a positive finite number of ms, got {v!r}")
        if not is_int(self.seed):
            raise ValueError(f"{self.kind}: seed must be an integer, got {self.seed!r}")
        self._matrix_cache: tuple[str, CSRMatrix] | None = None
        self._dram_gbps: float | None = None

    # -- configuration ------------------------------------------------------------------------
    @property
    def torch_device(self) -> torch.device:
        """The device the run uses: CUDA when available (or asked for), else the CPU."""
        if self.device == "cpu" or (self.device == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        return torch.device("cuda")

    @property
    def on_gpu(self) -> bool:
        return self.torch_device.type == "cuda"

    @property
    def baselines(self) -> tuple[str, ...]:
        """The requested implementations that sgk is compared with."""
        return tuple(n for n in self.impl_names if n != "sgk" and self.impls[n].baseline)

    def get_configs(self) -> list[Case]:
        """The cases to run: the suite's, filtered by substring, limited; on the CPU the first
        :attr:`cpu_cases` (or ``limit``) with n capped to :attr:`cpu_n_cap` and generated matrices
        shrunk to :attr:`cpu_elements_cap` elements."""
        cases = get_cases(self.suite, self.kind, dlmc_dir=self.dlmc_dir)
        if self.filter:
            kept = [c for c in cases if c.matches(self.filter)]
            if not kept:
                raise ValueError(f"--filter {self.filter!r} matches none of the {len(cases)} cases of suite {self.suite}")
            cases = kept
        limit = self.limit if self.limit is not None else (None if self.on_gpu else self.cpu_cases)
        if limit is not None:
            cases = cases[:limit]
        if not self.on_gpu:
            cases = [c.reduced(self.cpu_n_cap, self.cpu_elements_cap) for c in cases]
        return cases

    # -- hooks for subclasses -----------------------------------------------------------------
    def make_inputs(self, case: Case, matrix: CSRMatrix, generator: torch.Generator) -> Any:
        """Build the inputs of one case on :attr:`torch_device` from its sparse matrix (fp32,
        N(0, 1) values). Subclasses return an object their :class:`Impl` prepare functions take."""
        raise NotImplementedError

    def useful_flops(self, case: Case) -> float:
        """Useful floating-point operations of one case: 2·nnz·n."""
        return 2.0 * case.nnz * case.n

    def bytes_moved(self, case: Case, dtype: str, result: "CaseResult | None" = None) -> float:
        """Bytes sgk must move at least (counted, not measured); 0 when unknown. ``result``: the
        case's results so far (a benchmark may count the form sgk's chosen kernel read)."""
        return 0.0

    # -- running ------------------------------------------------------------------------------
    def case_seed(self, case: Case) -> int:
        """A per-matrix seed (independent of n, so cases sharing a matrix share its values)."""
        return (zlib.crc32(case.matrix_id.encode()) ^ (self.seed * 0x9E3779B1)) & 0x7FFFFFFF

    def load_matrix(self, case: Case) -> CSRMatrix:
        """The case's sparse matrix on the run's device, fp32 N(0, 1) values; the last one is
        cached, so consecutive cases that differ only in n reuse it."""
        if self._matrix_cache is not None and self._matrix_cache[0] == case.matrix_id:
            return self._matrix_cache[1]
        self._matrix_cache = None
        gen = torch.Generator().manual_seed(self.case_seed(case))
        if case.path is not None:
            from ..io import load_smtx

            a = load_smtx(case.path, values="random", dtype=torch.float32, generator=gen, device=self.torch_device)
        else:
            a = CSRMatrix.random(
                case.m,
                case.k,
                case.sparsity,
                distribution="skewed" if case.row_cv is not None else "uniform",
                row_cv=case.row_cv if case.row_cv is not None else 0.3,
                dtype=torch.float32,
                device=self.torch_device,
                generator=gen,
            )
        self._matrix_cache = (case.matrix_id, a)
        return a

    def reports_dram(self) -> bool:
        """Whether cases get their share of the measured DRAM read rate (memory-bound suites)."""
        return False

    def dram_read_gbps(self) -> float | None:
        """The device's DRAM read rate in GB/s, measured once per run by a read-only kernel over 2 GB
        (:mod:`sgk.bench.bandwidth`), timed like the cases; None off the GPU, or when the
        measurement failed (said once in the run's warnings). The decode suite's bytes are
        compared with it (issue 5.1 asks for a share of the measured bandwidth)."""
        if not self.on_gpu:
            return None
        if self._dram_gbps is None:
            from .bandwidth import dram_read_gbps

            try:
                self._dram_gbps = dram_read_gbps(self.time_ms, self.torch_device)
            except Exception as e:  # noqa: BLE001 - the cases' results must not be lost to it
                self._dram_gbps = 0.0
                self.warnings.append(f"DRAM read rate not measured (no '% DRAM'): {type(e).__name__}: {e}")
        return self._dram_gbps or None

    def time_ms(self, fn: Callable[[], Any]) -> float:
        return cuda_time_ms(fn, self.warmup, self.rep, self.timer) if self.on_gpu else cpu_time_ms(fn)

    def run_impl(self, name: str, inputs: Any) -> ImplResult:
        """Prepare, check, then time one implementation; never raises."""
        with warnings.catch_warnings():
            # torch.sparse's "beta" and "invariant checks" notices, once per process, are noise here.
            warnings.filterwarnings("ignore", message=r"Sparse (CSR tensor support|invariant checks)", category=UserWarning)
            return self._run_impl(name, inputs)

    def _run_impl(self, name: str, inputs: Any) -> ImplResult:
        try:
            prepared = self.impls[name].prepare(inputs, self.dtype)
        except NotImplementedError as e:  # the implementation has no form for this case: not a failure
            return ImplResult(name, "n/a", message=str(e))
        except Exception as e:  # noqa: BLE001 - one implementation failing must not stop the run
            return ImplResult(name, "error", message=f"prepare: {type(e).__name__}: {e}")
        tol = TOLERANCES[prepared.precision]
        res = ImplResult(name, "error", precision=prepared.precision, tol=tol)
        try:
            with prepared.context():
                out = prepared.fn()
                err = float(prepared.error(out))
                del out
                res.rel_err = err
                if not err <= tol:
                    res.status = "failed"
                    res.message = f"rel err {err:.2e} > tol {tol:.0e}"
                    return res
                res.ms = self.time_ms(prepared.fn)
                res.status = "ok"
                if prepared.describe is not None:
                    res.config = prepared.describe()
                if self.on_gpu and res.ms < HOST_TIMED_MS:
                    try:
                        res.host_us = host_time_us(prepared.fn)
                    except Exception as e:  # noqa: BLE001 - an extra measurement must not lose the timing
                        self.warnings.append(f"{name}: host time not measured: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001
            res.status, res.ms = "error", None
            res.message = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        return res

    def run_case(self, case: Case) -> CaseResult:
        """Run every requested implementation on one case; never raises."""
        result = CaseResult(case)
        inputs = None
        try:
            matrix = self.load_matrix(case)
            result.row_cv = float(matrix.topology.stats()["cv"])
            gen = torch.Generator(device=self.torch_device).manual_seed(self.case_seed(case) + case.n)
            inputs = self.make_inputs(case, matrix, gen)
        except Exception as e:  # noqa: BLE001
            result.error = f"inputs: {type(e).__name__}: {e}"
            self._free()
            return result
        for name in self.impl_names:
            result.impls[name] = self.run_impl(name, inputs)
        del inputs
        self._derive(result)
        self._free()
        return result

    def _derive(self, r: CaseResult) -> None:
        """Fill sgk's TFLOP/s, GB/s, share of peak and the Sputnik estimate."""
        t = r.ms("sgk")
        if t:
            r.tflops = self.useful_flops(r.case) / (t * 1e-3) / 1e12
            nbytes = self.bytes_moved(r.case, self.dtype, r)
            r.gbps = nbytes / (t * 1e-3) / 1e9 if nbytes else None
            if self.on_gpu:
                from .env import peak_tflops

                peak = peak_tflops(torch.cuda.get_device_name(), self.dtype)
                r.pct_peak = 100.0 * r.tflops / peak if peak else None
                dram = self.dram_read_gbps() if self.reports_dram() else None
                r.pct_dram = 100.0 * r.gbps / dram if dram and r.gbps else None
        if self.anchors is not None and self.on_gpu:
            self.annotate_anchor(r)

    def annotate_anchor(self, r: CaseResult) -> None:
        """Attach the matching anchor row (by DLMC path suffix and n) and the estimated speedup
        over Sputnik, ``(cusparse_ours / sgk_ours) / (cusparse_anchor / sputnik_anchor)``, with the
        columns of :attr:`anchor_columns` for the run's dtype. Cases whose n was reduced never match."""
        if self.anchors is None or r.case.n != r.case.n_full:
            return
        row = self.anchors.lookup(r.case.key, r.case.n)
        if row is None:
            return
        skip = ("m", "k", "n", "nnz", "sparsity")
        r.anchor = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k not in skip}
        cs_col, sp_col = self.anchor_columns.get(self.dtype, ("", ""))
        t, cs_ours = r.ms("sgk"), r.ms("cusparse")
        if t and cs_ours and row.get(cs_col) and row.get(sp_col):
            r.sputnik_est = speedup_over_sputnik(cs_ours, t, float(row[cs_col]), float(row[sp_col]))

    def _free(self) -> None:
        if self.on_gpu:
            gc.collect()
            torch.cuda.empty_cache()

    def run(self, progress: TextIO | bool | None = True, cases: list[Case] | None = None) -> list[CaseResult]:
        """Run all cases (default :meth:`get_configs`), printing one progress line per case to
        ``progress`` (True: stderr; None/False: quiet); results are appended to :attr:`results`
        and returned. Without a GPU (:attr:`on_gpu` false) this is the CPU reference path."""
        stream = sys.stderr if progress is True else (progress or None)
        cases = self.get_configs() if cases is None else cases
        width = len(str(len(cases)))
        for i, case in enumerate(cases, 1):
            r = self.run_case(case)
            self.results.append(r)
            if stream is not None:
                print(f"[{i:>{width}}/{len(cases)}] {self.progress_line(r)}", file=stream, flush=True)
        self._matrix_cache = None
        return self.results

    def progress_line(self, r: CaseResult) -> str:
        """``rn50/0.9/bn1_g1_1_1 n=196  sgk 0.012 ms  cublas 0.020 ms (1.67x) ...``"""
        parts = [r.case.short_name]
        if r.error:
            return f"{parts[0]}  ERROR {r.error}"
        for name, ir in r.impls.items():
            if ir.ok:
                s = f"{name} {ir.ms:.4f} ms"
                sp = r.speedup(name) if name != "sgk" else None
                parts.append(s + (f" ({sp:.2f}x)" if sp else ""))
            else:
                parts.append(f"{name} {ir.status.upper()}" + (f" [{ir.message}]" if ir.message else ""))
        if r.sputnik_est:
            parts.append(f"vs sputnik {r.sputnik_est:.2f}x (est)")
        return "  ".join(parts)

