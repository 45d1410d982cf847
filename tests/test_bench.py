"""sgk.bench: suites, DLMC discovery, anchors, checking/timing harness, report (CPU only, fast)."""
import csv
import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch

from sgk.bench import (
    Case,
    CaseResult,
    Impl,
    ImplResult,
    Prepared,
    SddmmBenchmark,
    SpmmBenchmark,
    dlmc_cases,
    geomean,
    load_anchors,
    speedup_over_sputnik,
    summarize,
    synthetic_cases,
    to_json,
    write_json,
)
from sgk.bench.anchors import anchor_key
from sgk.bench.env import collect_environment
from sgk.bench.harness import relative_error, tf32_matmul
from sgk.bench.report import format_summary, format_table
from sgk.bench.suites import DLMC_MATRICES, find_dlmc_dir, parse_dlmc_path, read_batchsizes

_REPO = Path(__file__).resolve().parents[1]
SHARED_DLMC = next((p for p in (_REPO.parent / "shared" / "dlmc", _REPO / ".dlmc") if (p / "dlmc.csv").is_file()), None)
needs_dlmc = pytest.mark.skipif(SHARED_DLMC is None, reason="the DLMC subset (../shared/dlmc or ./.dlmc) is not present")


def _write_smtx(path: Path, m: int, k: int, rows: list[list[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = [0]
    for r in rows:
        offsets.append(offsets[-1] + len(r))
    cols = [c for r in rows for c in r]
    path.write_text(f"{m}, {k}, {len(cols)}\n" + " ".join(map(str, offsets)) + "\n" + " ".join(map(str, cols)) + "\n")


# -- DLMC discovery ---------------------------------------------------------------------------
@needs_dlmc
def test_dlmc_subset_discovery():
    cases = dlmc_cases("spmm", SHARED_DLMC)
    assert len({c.path for c in cases}) == 158
    assert len(cases) == 208
    groups = Counter(c.group for c in cases)
    assert groups == {"rn50": 108, "transformer N=256": 50, "transformer N=2048": 50}
    batch = read_batchsizes(SHARED_DLMC / "rn50_batchsizes.txt")
    for c in cases:
        assert c.source == "dlmc" and c.method == "magnitude_pruning"
        if c.model == "rn50":
            assert c.n == batch[c.layer]
        else:
            assert c.model == "transformer" and c.n in (256, 2048)
    by_key = {(c.key, c.n): c for c in cases}
    final = by_key[("rn50/magnitude_pruning/0.9/final_dense.smtx", 1)]
    assert (final.m, final.k) == (1000, 2048)
    assert Counter(c.n for c in cases if c.model == "rn50") == {196: 36, 3136: 28, 784: 28, 49: 12, 1: 4}


def test_full_tree_layout(tmp_path, monkeypatch):
    root = tmp_path / "dlmc"
    _write_smtx(root / "rn50" / "random_pruning" / "0.5" / "conv_a.smtx", 4, 6, [[0, 2], [1], [], [3, 4, 5]])
    _write_smtx(root / "rn50" / "variational_dropout" / "0.7" / "conv_a.smtx", 4, 6, [[0], [1], [2], [5]])
    _write_smtx(root / "rn50" / "random_pruning" / "0.5" / "not_listed.smtx", 2, 2, [[0], [1]])
    _write_smtx(root / "transformer" / "extended_magnitude_pruning" / "0.95" / "ffn.smtx", 3, 5, [[4], [0, 1], [2]])
    (root / "rn50_batchsizes.txt").write_text("conv_a,196\nother_layer, 49\n")
    warnings = []
    cases = dlmc_cases("spmm", root, warn=warnings.append)
    got = sorted((c.key, c.n) for c in cases)
    assert got == [
        ("rn50/random_pruning/0.5/conv_a.smtx", 196),
        ("rn50/variational_dropout/0.7/conv_a.smtx", 196),
        ("transformer/extended_magnitude_pruning/0.95/ffn.smtx", 256),
        ("transformer/extended_magnitude_pruning/0.95/ffn.smtx", 2048),
    ]
    assert len(warnings) == 1 and "not_listed" in warnings[0]
    rp = next(c for c in cases if c.method == "random_pruning")
    assert (rp.m, rp.k, rp.nnz, rp.level) == (4, 6, 6, "0.5")
    assert rp.label == "rn50/random_pruning/0.5/conv_a"
    # Default directory: $SGK_DLMC_DIR first.
    monkeypatch.setenv("SGK_DLMC_DIR", str(root))
    assert find_dlmc_dir() == root
    # The benchmark loads the files and runs them (CPU reference path).
    bench = SpmmBenchmark(suite="dlmc", dlmc_dir=str(root), device="cpu", impl_names=("sgk", "cublas", "cusparse"))
    bench.run(progress=None)
    assert [r.status for r in bench.results] == ["ok"] * 4
    assert all(r.case.n == min(r.case.n_full, 64) for r in bench.results)


def test_find_dlmc_dir_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("SGK_DLMC_DIR", raising=False)
    empty = tmp_path / "a" / "b"
    empty.mkdir(parents=True)
    monkeypatch.chdir(empty)
    with pytest.raises(ValueError, match="--dlmc-dir"):
        find_dlmc_dir()
    with pytest.raises(ValueError, match="no such directory"):
        find_dlmc_dir(tmp_path / "missing")
    (empty / ".dlmc").mkdir()
    assert find_dlmc_dir() == Path(".dlmc")


def test_parse_dlmc_path():
    assert parse_dlmc_path("/x/dlmc/rn50/magnitude_pruning/0.98/final_dense.smtx") == (
        "rn50",
        "magnitude_pruning",
        "0.98",
        "final_dense",
    )
    assert parse_dlmc_path("transformer/0.9/q.smtx") == ("transformer", "unknown", "0.9", "q")
    assert parse_dlmc_path("mine/pruned/0.5/w.smtx") == ("mine", "pruned", "0.5", "w")


# -- the synthetic suite ----------------------------------------------------------------------
def test_synthetic_suite_table():
    cases = synthetic_cases("spmm")
    assert len(DLMC_MATRICES) == 158 and len(cases) == 208
    assert Counter(c.group for c in cases) == {"rn50": 108, "transformer N=256": 50, "transformer N=2048": 50}
    shapes = {(c.model, c.m, c.k) for c in cases}
    assert ("transformer", 2048, 512) in shapes and ("transformer", 512, 2048) in shapes
    assert ("rn50", 512, 4608) in shapes and ("rn50", 1000, 2048) in shapes
    assert {c.level for c in cases if c.model == "transformer"} == {"0.7", "0.8", "0.9", "0.95", "0.98"}
    assert all(0.05 < c.row_cv < 2 for c in cases)
    assert all(abs(c.sparsity - float(c.level)) < 1e-3 for c in cases)


@needs_dlmc
def test_synthetic_table_matches_dlmc_csv():
    with open(SHARED_DLMC / "dlmc.csv") as f:
        rows = list(csv.DictReader(f))
    expected = {}
    for r in rows:
        model, method, level, name = r["path"].split("/")[-4:]
        cv = float(r["std_nnz_per_row"]) / float(r["mean_nnz_per_row"])
        expected[(model, level, name[:-5])] = (int(r["nrows"]), int(r["ncols"]), int(float(r["nnz"])), cv)
    table = {(mo, lv, la): (m, k, nnz, cv) for mo, lv, la, m, k, _, nnz, cv in DLMC_MATRICES}
    assert table.keys() == expected.keys()
    for key, (m, k, nnz, cv) in expected.items():
        tm, tk, tnnz, tcv = table[key]
        assert (tm, tk, tnnz) == (m, k, nnz) and abs(tcv - cv) < 1e-3


def test_synthetic_topology_matches_case():
    bench = SpmmBenchmark(device="cpu")
    case = next(c for c in synthetic_cases() if c.model == "transformer" and c.level == "0.9")
    a = bench.load_matrix(case)
    assert a.shape == (case.m, case.k) and a.nnz == case.nnz
    assert abs(a.topology.stats()["cv"] - case.row_cv) < 0.15 * case.row_cv
    assert bench.load_matrix(case) is a  # cached for the next n
    assert bool((a.values != 0).all())


# -- anchors ----------------------------------------------------------------------------------
def test_speedup_over_sputnik_formula():
    # Ours: sgk 2x faster than cuSPARSE; anchors: Sputnik 2x faster than cuSPARSE -> parity.
    assert speedup_over_sputnik(0.2, 0.1, 3.0, 1.5) == pytest.approx(1.0)
    # Ours 4x over cuSPARSE, Sputnik 2x -> 2x over Sputnik.
    assert speedup_over_sputnik(0.4, 0.1, 3.0, 1.5) == pytest.approx(2.0)


def _anchor_file(tmp_path: Path) -> Path:
    rows = [
        {"path": "dlmc/transformer/magnitude_pruning/0.90/w.smtx", "model": "transformer", "m": 8, "k": 8, "n": 256,
         "nnz": 6, "cusparse32": 0.30, "sputnik32": 0.15, "sputnik16": 0.10,
         "sddmm_cusparse32": 0.8, "sddmm_sputnik32": 0.2},
        {"path": "dlmc/transformer/magnitude_pruning/0.9/w.smtx", "model": "transformer", "m": 8, "k": 8, "n": 2048,
         "nnz": 6, "cusparse32": 1.0, "sputnik32": 0.5},
    ]
    p = tmp_path / "anchors.json"
    p.write_text(json.dumps(rows))
    return p


def test_anchor_matching_and_estimate(tmp_path):
    anchors = load_anchors(_anchor_file(tmp_path))
    assert len(anchors) == 2
    assert anchor_key("/a/b/transformer/magnitude_pruning/0.90/w.smtx", 256) == anchor_key(
        "transformer/magnitude_pruning/0.9/w.smtx", 256
    )
    case = Case("transformer", "magnitude_pruning", "0.9", "w", 8, 8, 256, 6)
    assert anchors.lookup(case.key, 256)["sputnik32"] == 0.15
    assert anchors.lookup(case.key, 512) is None

    def result(case, sgk_ms, cusparse_ms):
        r = CaseResult(case)
        r.impls["sgk"] = ImplResult("sgk", "ok", "fp32", sgk_ms)
        r.impls["cusparse"] = ImplResult("cusparse", "ok", "fp32", cusparse_ms)
        return r

    for dtype, sputnik in (("fp32", 0.15), ("fp16", 0.10), ("bf16", 0.10)):
        bench = SpmmBenchmark(dtype=dtype, device="cpu", anchors=anchors)
        r = result(case, 0.05, 0.20)
        bench.annotate_anchor(r)
        assert r.sputnik_est == pytest.approx((0.20 / 0.05) / (0.30 / sputnik))
        assert r.anchor["cusparse32"] == 0.30
    # The second row has no sputnik16: no fp16 estimate.
    case2048 = Case("transformer", "magnitude_pruning", "0.9", "w", 8, 8, 2048, 6)
    r = result(case2048, 0.25, 1.0)
    SpmmBenchmark(dtype="fp16", device="cpu", anchors=anchors).annotate_anchor(r)
    assert r.sputnik_est is None and r.anchor is not None
    # SDDMM uses the sddmm_* columns (Sputnik SDDMM is fp32 only).
    r = result(case, 0.1, 0.4)
    SddmmBenchmark(dtype="bf16", device="cpu", anchors=anchors).annotate_anchor(r)
    assert r.sputnik_est == pytest.approx((0.4 / 0.1) / (0.8 / 0.2))
    # A case whose n was reduced for the CPU never matches.
    r = result(case.reduced(64), 0.1, 0.4)
    SpmmBenchmark(device="cpu", anchors=anchors).annotate_anchor(r)
    assert r.anchor is None and r.sputnik_est is None


# -- harness ----------------------------------------------------------------------------------
def test_geomean():
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    assert geomean([2.0, None, 8.0, 0.0, math.inf]) == pytest.approx(4.0)
    assert geomean([]) is None and geomean([None]) is None


def test_relative_error_and_tf32_flag():
    ref = torch.ones(4, dtype=torch.float64)
    assert relative_error(torch.ones(4), ref) == 0.0
    assert relative_error(torch.tensor([1.0, 1.0, 1.0, float("nan")]), ref) == math.inf
    assert relative_error(torch.ones(3), ref) == math.inf
    before = torch.backends.cuda.matmul.fp32_precision
    with tf32_matmul(True):
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    assert torch.backends.cuda.matmul.fp32_precision == before


def _bad_prepare(inp, dtype):
    b = inp.dense_b("fp32")
    return Prepared(lambda: torch.zeros(inp.a.shape[0], b.shape[1]), "fp32", inp.error("fp32"))


def _raising_prepare(inp, dtype):
    def fn():
        raise RuntimeError("boom")

    return Prepared(fn, "fp32", inp.error("fp32"))


class _BrokenSpmm(SpmmBenchmark):
    impls = {
        **SpmmBenchmark.impls,
        "wrong": Impl("wrong", "returns zeros", _bad_prepare),
        "raises": Impl("raises", "raises", _raising_prepare),
    }


def test_failed_check_is_marked_not_timed_and_run_continues():
    bench = _BrokenSpmm(device="cpu", limit=2, impl_names=("sgk", "wrong", "raises", "cusparse"))
    results = bench.run(progress=None)
    assert len(results) == 2
    for r in results:
        assert r.impls["sgk"].status == "ok" and r.impls["sgk"].ms > 0
        assert r.impls["sgk"].rel_err < 1e-6
        assert r.impls["wrong"].status == "failed" and r.impls["wrong"].ms is None
        assert r.impls["wrong"].rel_err == pytest.approx(1.0)
        assert r.impls["raises"].status == "error" and "boom" in r.impls["raises"].message
        assert r.impls["cusparse"].status == "ok"
        assert r.status == "partial" and r.speedup("wrong") is None and r.speedup("cusparse") > 0
    table = format_table(bench)
    assert "FAIL" in table and "ERR" in table
    assert "vs cusparse" in format_summary(bench)


def test_cpu_reduced_configs():
    bench = SddmmBenchmark(device="cpu", filter="transformer", dtype="bf16")
    cases = bench.get_configs()
    assert len(cases) == bench.cpu_cases
    assert all(c.model == "transformer" and c.n <= 64 and c.n_full in (256, 2048) for c in cases)
    assert all(c.group.startswith("transformer N=") for c in cases)
    assert SpmmBenchmark(device="cpu", limit=7).get_configs()[6].n == 64
    with pytest.raises(ValueError, match="matches none"):
        SpmmBenchmark(device="cpu", filter="no-such-layer").get_configs()
    with pytest.raises(ValueError, match="unknown impl"):
        SpmmBenchmark(impl_names=("sgk", "magma"))


def test_sddmm_bf16_runs_and_checks():
    bench = SddmmBenchmark(device="cpu", dtype="bf16", limit=1, impl_names=("sgk", "cublas", "cublas_bf16", "cusparse"))
    (r,) = bench.run(progress=None)
    assert r.status == "ok", r.impls
    assert r.impls["sgk"].precision == "bf16" and r.impls["cusparse"].precision == "fp32"
    assert r.impls["sgk"].tol == 2e-2 and r.impls["cusparse"].tol == 1e-4


def test_json_provenance(tmp_path):
    bench = SpmmBenchmark(device="cpu", limit=1)
    bench.run(progress=None)
    env = collect_environment(["sgk", "bench", "spmm", "--limit", "1"])
    doc = to_json(bench, env, summarize(bench))
    path = tmp_path / "out" / "r.json"
    write_json(path, doc)
    loaded = json.loads(path.read_text())
    prov = loaded["provenance"]
    for key in ("gpu", "torch", "triton", "cuda", "python", "git_sha", "date", "argv", "dtype", "suite", "sgk"):
        assert key in prov
    assert prov["argv"][:3] == ["sgk", "bench", "spmm"] and prov["dtype"] == "fp32" and prov["suite"] == "synthetic"
    assert prov["torch"] == torch.__version__
    (case,) = loaded["cases"]
    assert case["status"] == "ok" and case["impls"]["sgk"]["ms"] > 0 and case["key"].endswith(".smtx")
    assert set(case["speedup"]) == {"cublas", "cusparse"}
    assert loaded["summary"]["all"]["cases"] == 1
    assert loaded["summary"]["rn50"]["speedup"]["cublas"]["count"] == 1


def test_decode_and_blocksparse_suites():
    from sgk.bench.suites import blocksparse_cases, decode_cases, get_cases

    dec = decode_cases()
    assert len(dec) == 3 * 5 * 5 and {c.n for c in dec} == {1, 8, 16, 32, 64}
    c = next(c for c in dec if c.m == 4096 and c.k == 14336 and c.level == "0.8" and c.n == 16)
    assert c.nnz == round(0.2 * 4096 * 14336) and c.group == "decode N=16"
    assert get_cases("decode", "spmm") == dec
    bsp = blocksparse_cases()
    assert len(bsp) == 4 * 4 * 4
    c = next(c for c in bsp if c.method == "fwd" and c.block_size == 64 and c.level == "0.9")
    assert c.nnz == round(0.1 * 64 * 64) * 64 * 64 and c.sparsity == pytest.approx(1 - 410 / 4096)


def test_spmm_decode_suite_cpu():
    bench = SpmmBenchmark(suite="decode", dtype="bf16", impl_names=("sgk", "cublas_bf16"), limit=1)
    (r,) = bench.run(progress=False)
    assert r.status == "ok" and r.case.n == 1


@pytest.mark.parametrize("product", ["fwd", "dsmm", "dgrad", "wgrad"])
def test_blocksparse_benchmark_cpu(product):
    """Each product runs and checks on the CPU path; torch's BSR has no dsmm/wgrad form: 'n/a', not a failure."""
    from sgk.bench import BlockSparseBenchmark

    bench = BlockSparseBenchmark(impl_names=("sgk", "cublas", "torch_bsr"), filter=f"/{product}/0.9/4096x4096_b128", limit=1)
    (r,) = bench.run(progress=False)
    assert r.case.method == product and r.case.n == 64  # reduced on the CPU
    assert r.impls["sgk"].status == "ok" and r.impls["cublas"].status == "ok"
    assert r.impls["torch_bsr"].status == ("ok" if product in ("fwd", "dgrad") else "n/a")
    assert r.status == "ok"


def test_summarize_script(tmp_path):
    """benchmarks/summarize.py turns a result file into the markdown tables of docs/performance.md."""
    import importlib.util

    out = tmp_path / "r.json"
    bench = SpmmBenchmark(impl_names=("sgk", "cublas"), limit=2)
    bench.run(progress=False)
    write_json(out, to_json(bench, collect_environment(["sgk"]), summarize(bench)))
    spec = importlib.util.spec_from_file_location("summarize", _REPO / "benchmarks" / "summarize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.summarize(out)
    assert "| group | cases | vs cublas |" in text and "| all | 2 |" in text


def test_git_sha_env_override_wins(monkeypatch):
    """A benchmark machine's tree may hold a stale .git: $SGK_GIT_SHA, when set, is what is recorded."""
    from sgk.bench.env import git_sha

    monkeypatch.setenv("SGK_GIT_SHA", "0123abc")
    assert git_sha() == "0123abc"
    monkeypatch.delenv("SGK_GIT_SHA")
    assert git_sha() != "0123abc"


def test_spmm_bytes_count_the_form_the_kernel_read():
    """GB/s counts A as the chosen kernel read it: 16-bit indices for a compact configuration, the
    bitmap for a bitmap one, 32-bit CSR when nothing is known (the CPU reference); the config is
    recovered from its record, unknown or missing fields tolerated."""
    from sgk.bench.harness import CaseResult, ImplResult
    from sgk.kernels import spmm as kmod

    m, k, n, nnz = 8192, 8192, 16, 13421773
    dense = (k * n + m * n) * 2
    flat = kmod._f(2, 16, 16, 1, pack=4)
    bitmap = kmod._b(64, 128, 16, 4, 3, coalesce=True)
    assert kmod.parse_config(str(flat)) == flat and kmod.parse_config(str(bitmap)) == bitmap
    assert kmod.parse_config("SpmmConfig(rows=4, block_k=64, block_n=1, num_warps=4, num_stages=1, kind='flat', "
                             "split_k=1, compact=True, pairs=True)") == kmod._f(4, 64, 1, 4)  # a record from before pack
    assert kmod.parse_config(None) is None and kmod.parse_config("reference") is None
    assert kmod.traffic_bytes(flat, m, k, n, nnz, 2) == nnz * 4 + (m + 1) * 4 + m * 4 + dense
    assert kmod.traffic_bytes(None, m, k, n, nnz, 2) == nnz * 6 + (m + 1) * 4 + m * 4 + dense
    assert kmod.traffic_bytes(bitmap, m, k, n, nnz, 2) == nnz * 2 + m * 32 * 8 * 8 + dense
    bench = SpmmBenchmark(suite="decode", dtype="bf16", impl_names=("sgk",), limit=1)
    case = bench.get_configs()[0]
    result = CaseResult(case, impls={"sgk": ImplResult("sgk", "ok", "bf16", 0.02, config=str(bitmap))})
    assert bench.bytes_moved(case, "bf16", result) == kmod.traffic_bytes(bitmap, case.m, case.k, case.n, case.nnz, 2)
    assert bench.bytes_moved(case, "bf16") == kmod.traffic_bytes(None, case.m, case.k, case.n, case.nnz, 2)


def test_host_time_per_call(monkeypatch):
    """host_time_us times back-to-back calls without synchronising inside the timed span; CPU runs
    record none."""
    from sgk.bench import harness

    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: synced.append(1))
    calls = []
    us = harness.host_time_us(lambda: calls.append(1), calls=7)
    assert len(calls) == 7 and len(synced) == 2 and us > 0
    bench = SpmmBenchmark(suite="decode", dtype="bf16", impl_names=("sgk",), limit=1)
    (r,) = bench.run(progress=False)
    assert r.impls["sgk"].host_us is None and "host_us" in r.impls["sgk"].to_dict()


def test_decode_suite_reports_share_of_dram(monkeypatch):
    """The decode suite compares each case's bytes with a DRAM read rate measured once in the run
    (the column '% DRAM' and sgk_pct_dram in the JSON); other suites and CPU runs do not."""
    bench = SpmmBenchmark(suite="decode", dtype="bf16", impl_names=("sgk",), limit=1)
    assert bench.reports_dram() and not SpmmBenchmark(suite="synthetic").reports_dram()
    (r,) = bench.run(progress=False)
    assert r.pct_dram is None and bench.dram_read_gbps() is None  # the CPU path: nothing measured
    monkeypatch.setattr(type(bench), "on_gpu", property(lambda self: True))
    monkeypatch.setattr(type(bench), "dram_read_gbps", lambda self: 2000.0)
    monkeypatch.setattr("sgk.bench.env.peak_tflops", lambda name, precision: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "test")
    bench._derive(r)
    assert r.gbps and r.pct_dram == pytest.approx(100.0 * r.gbps / 2000.0) and "% DRAM" in format_table(bench)


@pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")
def test_dram_read_rate_kernel(kernel_device, monkeypatch):
    """The read kernel behind the decode suite's '% DRAM' reads the whole buffer (its sum checks)
    and the rate is bytes over the caller's time."""
    import types

    from sgk.bench import bandwidth

    if kernel_device.type == "cpu":
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: types.SimpleNamespace(multi_processor_count=2))
    gbps = bandwidth.dram_read_gbps(lambda fn: (fn(), 0.5)[1], kernel_device, gigabytes=2e-4)
    numel = int(2e-4 * 1e9) // 4 // 4096 * 4096
    assert gbps == pytest.approx(numel * 4 / 0.5e-3 / 1e9)


def test_decode_summary_by_n_and_by_sparsity():
    """The decode suite's summary lists N in numeric order and adds the cross-section by sparsity;
    other suites get no sparsity rows."""
    from sgk.bench.suites import decode_cases

    bench = SpmmBenchmark(suite="decode", dtype="bf16", impl_names=("sgk",))
    cases = [c for c in decode_cases() if c.level in ("0.5", "0.8") and c.m == c.k == 8192]
    bench.results = [CaseResult(c) for c in cases]
    keys = list(summarize(bench))
    assert keys == ["decode N=1", "decode N=8", "decode N=16", "decode N=32", "decode N=64", "decode 50%", "decode 80%", "all"]
    assert summarize(bench)["decode 80%"]["cases"] == 5
    other = SpmmBenchmark(suite="synthetic", impl_names=("sgk",), limit=2)
    other.results = [CaseResult(c) for c in other.get_configs()[:2]]
    assert not any(k.startswith("decode") for k in summarize(other))


def test_dram_read_rate_check_and_failure(monkeypatch):
    """A read kernel that skips part of the buffer is caught by the sum check; a failed
    measurement leaves '% DRAM' out with a warning and keeps the run going."""
    from sgk.bench import bandwidth

    def short_read(x, block=4096, *args):
        out = torch.zeros(block)
        return (lambda: out.copy_(x[: x.numel() // 2 // block * block].view(-1, block).sum(0))), out

    monkeypatch.setattr(bandwidth, "read_kernel_launcher", short_read)
    with pytest.raises(RuntimeError, match="summed"):
        bandwidth.dram_read_gbps(lambda fn: (fn(), 1.0)[1], torch.device("cpu"), gigabytes=2e-4)
    bench = SpmmBenchmark(suite="decode", dtype="bf16", impl_names=("sgk",), limit=1)
    monkeypatch.setattr(type(bench), "on_gpu", property(lambda self: True))
    assert bench.dram_read_gbps() is None and bench.dram_read_gbps() is None
    assert sum("DRAM read rate not measured" in w for w in bench.warnings) == 1


def test_case_reduced_shrinks_generated_matrices_only():
    """On the CPU path a generated unstructured matrix above the element cap is halved along its
    longer side at the same density; files and block-sparse cases keep their shapes."""
    from sgk.bench.suites import Case

    c = Case("decode", "uniform", "0.8", "14336x4096", 14336, 4096, 32, int(0.2 * 14336 * 4096))
    r = c.reduced(16, 1 << 20)
    assert r.m * r.k <= 1 << 20 and r.m * r.k > 1 << 19 and r.n == 16 and r.n_full == 32
    assert r.nnz == round(0.2 * r.m * r.k) and r.label == c.label
    assert (r.m, r.k) == (896, 1024)
    assert c.reduced(16).m == c.m  # no cap: only n
    dlmc = Case("rn50", "magnitude_pruning", "0.8", "x", 4096, 4096, 64, 100, source="dlmc", path="x.smtx")
    assert (dlmc.reduced(16, 1 << 20).m, dlmc.reduced(16, 1 << 20).k) == (4096, 4096)
    block = Case("blocksparse", "fwd", "0.9", "4096x4096_b64", 4096, 4096, 4096, 64 * 64 * 400, block_size=64)
    assert block.reduced(64, 1 << 20).m == 4096


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(limit=-1), "limit must be a positive integer"),
        (dict(limit=0), "limit must be a positive integer"),
        (dict(warmup=-5), "warmup must be a positive finite number"),
        (dict(rep=float("inf")), "rep must be a positive finite number"),
        (dict(seed="x"), "seed must be an integer"),
        (dict(filter=3), "filter must be a string"),
    ],
)
def test_python_api_checks_what_the_cli_checks(kwargs, match):
    """sgk.bench's Benchmark objects refuse the values the CLI's parser refuses (limit=-1 used to
    drop the last case, filter=3 to fail deep inside)."""
    from sgk.bench.spmm import SpmmBenchmark

    with pytest.raises(ValueError, match=r"spmm: " + match):
        SpmmBenchmark(**kwargs)
