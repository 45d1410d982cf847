"""sgk bench attention: the case grid, the CPU run (JSON, plot), the check, the block-mask builder (CPU only, fast)."""
import json

import pytest
import torch

from sgk.bench import BENCHMARKS
from sgk.bench.attention import (
    HEADLINE,
    AttentionBenchmark,
    AttnPrepared,
    build_block_mask,
    build_topology,
    dense_mask,
    format_attention_table,
    format_headline,
    topology_blocks,
)
from sgk.cli import main
from sgk.csr import CSRMatrix


@pytest.fixture
def as_gpu(monkeypatch):
    """Pretend the run is on a GPU (for get_configs only: full-size cases)."""
    monkeypatch.setattr(AttentionBenchmark, "on_gpu", property(lambda self: True))


def _key(c):
    return (c.L, c.heads, c.d, c.sparsity, c.mode)


# -- configuration --------------------------------------------------------------------------------
def test_registered():
    assert BENCHMARKS["attention"] is AttentionBenchmark
    assert AttentionBenchmark(device="cpu").impl_names == ("sgk", "dense", "sdpa", "flex")


def test_default_grid(as_gpu):
    cases = AttentionBenchmark().get_configs()
    assert len(cases) == 4 * 3 * 2
    assert [c.L for c in cases[::6]] == [4096, 8192, 12288, 16384]
    assert {(c.heads, c.d, c.pattern, c.causal, c.batch) for c in cases} == {(8, 64, "band_and_decay", False, 1)}
    assert {c.sparsity for c in cases} == {0.9, 0.95, 0.98}
    assert [c.mode for c in cases[:2]] == ["fwd", "fwdbwd"]
    heads = [c for c in cases if c.headline]
    assert [_key(c) for c in heads] == [(12288, 8, 64, 0.95, "fwd"), (12288, 8, 64, 0.95, "fwdbwd")]
    assert all(c.L == c.L_full for c in cases)


def test_filters_limit_modes(as_gpu):
    assert len(AttentionBenchmark(filter="fwdbwd").get_configs()) == 12
    assert [_key(c) for c in AttentionBenchmark(filter="headline").get_configs()] == [
        (12288, 8, 64, 0.95, "fwd"),
        (12288, 8, 64, 0.95, "fwdbwd"),
    ]
    assert [c.L for c in AttentionBenchmark(filter="L=8192", mode="fwd").get_configs()] == [8192] * 3
    assert len(AttentionBenchmark(limit=2).get_configs()) == 2
    with pytest.raises(ValueError, match="matches none"):
        AttentionBenchmark(filter="no-such-case").get_configs()
    # A custom grid holds the headline case only when asked for.
    custom = AttentionBenchmark(L=(4096,), sparsity=(0.9,), mode="fwdbwd").get_configs()
    assert [_key(c) for c in custom] == [(4096, 8, 64, 0.9, "fwdbwd")] and not custom[0].headline
    added = AttentionBenchmark(L=(4096,), sparsity=(0.9,), mode="fwdbwd", headline=True).get_configs()
    assert [_key(c) for c in added] == [(4096, 8, 64, 0.9, "fwdbwd"), (12288, 8, 64, 0.95, "fwdbwd")]
    assert added[1].headline and all(getattr(added[1], k) == v for k, v in HEADLINE.items())
    other = AttentionBenchmark(L=(2048,), heads=(16,), d=(128,), sparsity=(0.98,), pattern="strided", causal=True, batch=2).get_configs()
    assert {(c.L, c.heads, c.d, c.pattern, c.causal, c.batch) for c in other} == {(2048, 16, 128, "strided", True, 2)}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sparsity": (1.0,)}, "sparsity"),
        ({"L": (0,)}, "positive"),
        ({"pattern": "diagonal"}, "unknown pattern"),
        ({"mode": "bwd"}, "mode"),
        ({"impl_names": ("sgk", "cublas")}, "unknown impl"),
        ({"timer": "cudagraph"}, "do_bench"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AttentionBenchmark(device="cpu", **kwargs)


def test_cpu_reduction():
    cases = AttentionBenchmark(device="cpu").get_configs()
    assert len(cases) == 24  # every case, reduced: L 4096..16384 → 64..256
    assert sorted({(c.L, c.L_full) for c in cases}) == [(64, 4096), (128, 8192), (192, 12288), (256, 16384)]
    assert {(c.heads, c.d, c.heads_full, c.d_full) for c in cases} == {(2, 16, 8, 64)}
    assert sum(c.headline for c in cases) == 2
    # Sizes that collapse onto the same reduced case run once.
    assert len(AttentionBenchmark(device="cpu", L=(1024, 2048), sparsity=(0.9,), mode="fwd").get_configs()) == 1


@pytest.mark.parametrize("pattern", ["band_and_decay", "random", "local", "strided"])
def test_topology_sparsity(pattern):
    t = build_topology(512, 0.9, pattern, seed=1)
    assert t.shape == (512, 512)
    assert abs(t.sparsity - 0.9) < 0.03, t.sparsity
    mask = dense_mask(t)
    assert bool(mask.diagonal().all()) and int(mask.sum()) == t.nnz


# -- block masks ----------------------------------------------------------------------------------
def _brute_force_blocks(mask, b):
    L, Lk = mask.shape
    nbq, nbk = -(-L // b), -(-Lk // b)
    anyb = torch.zeros(nbq, nbk, dtype=torch.bool)
    full = torch.zeros(nbq, nbk, dtype=torch.bool)
    for i in range(nbq):
        for j in range(nbk):
            tile = mask[i * b : (i + 1) * b, j * b : (j + 1) * b]
            anyb[i, j], full[i, j] = bool(tile.any()), bool(tile.all())
    return anyb, full


def test_topology_blocks():
    L, b = 72, 16  # 4.5 blocks: the last row and column of tiles are clipped
    mask = torch.eye(L, dtype=torch.bool)
    mask[3, 50] = mask[70, 5] = mask[40, 66] = True  # single pairs: partial tiles (0, 3), (4, 0), (2, 4)
    mask[:16, 16:32] = True  # one full interior tile
    mask[64:, 64:] = True  # the full clipped corner tile (8×8)
    t = _csr(mask)
    anyb, full = topology_blocks(t, b)
    ref_any, ref_full = _brute_force_blocks(mask, b)
    assert anyb.shape == (5, 5)
    assert torch.equal(anyb, ref_any) and torch.equal(full, ref_full)
    assert bool(full[0, 1]) and bool(full[4, 4]) and not bool(full[0, 0])
    assert torch.nonzero(anyb).tolist() == [[0, 0], [0, 1], [0, 3], [1, 1], [2, 2], [2, 4], [3, 3], [4, 0], [4, 4]]
    assert not bool(ref_any.all())  # the test exercises skipped tiles too
    # On a real topology at the benchmark's granularity.
    topo = build_topology(256, 0.95, "band_and_decay", seed=3)
    a128, f128 = topology_blocks(topo, 128)
    r128, rf128 = _brute_force_blocks(dense_mask(topo), 128)
    assert torch.equal(a128, r128) and torch.equal(f128, rf128)


def _csr(mask):
    rows, cols = mask.nonzero(as_tuple=True)
    offsets = torch.zeros(mask.shape[0] + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=mask.shape[0]), 0)
    return CSRMatrix(offsets, cols, torch.ones(cols.numel()), tuple(mask.shape))


def test_build_block_mask_matches_topology_blocks():
    pytest.importorskip("torch.nn.attention.flex_attention")
    topo = build_topology(80, 0.9, "band_and_decay", seed=2)
    mask = dense_mask(topo)
    block_mask, mask_mod = build_block_mask(mask, 16)
    anyb, full = topology_blocks(topo, 16)
    dense_blocks = block_mask.to_dense()[0, 0].bool()
    assert torch.equal(dense_blocks, anyb)
    # The blocks the mask_mod can skip (full tiles) are exactly those without an absent pair.
    nfull = block_mask.full_kv_num_blocks[0, 0]
    full_sets = [set(block_mask.full_kv_indices[0, 0, i, : int(n)].tolist()) for i, n in enumerate(nfull)]
    assert full_sets == [set(torch.nonzero(row).flatten().tolist()) for row in full]
    q = torch.arange(80)
    assert torch.equal(mask_mod(0, 0, q[:, None], q[None, :]), mask)


# -- running on the CPU path ----------------------------------------------------------------------
def test_cli_cpu_run_json_and_plot(tmp_path, capsys):
    out, png = tmp_path / "att.json", tmp_path / "att.png"
    rc = main(
        ["bench", "attention", "--device", "cpu", "--L", "8192", "--sparsity", "0.95", "--headline"]
        + ["--out", str(out), "--plot", str(png), "-q"]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "no CUDA GPU" in text or "reference path" in text
    assert "headline forward+backward" in text and "targets not evaluated" in text
    assert png.is_file() and png.stat().st_size > 10_000
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "attention" and doc["schema"] >= 1
    prov = doc["provenance"]
    for key in ("date", "argv", "git_sha", "sgk", "torch", "triton", "python", "gpu", "dtype"):
        assert key in prov
    assert prov["argv"][:3] == ["sgk", "bench", "attention"] and prov["dtype"] == "bf16"
    cfg = doc["config"]
    assert cfg["reduced_cpu_path"] and cfg["impls"] == ["sgk", "dense", "sdpa", "flex"] and cfg["modes"] == ["fwd", "fwdbwd"]
    cases = doc["cases"]
    assert [(c["L"], c["L_full"], c["mode"], c["headline"]) for c in cases] == [
        (128, 8192, "fwd", False),
        (128, 8192, "fwdbwd", False),
        (192, 12288, "fwd", True),
        (192, 12288, "fwdbwd", True),
    ]
    for c in cases:
        assert c["nnz"] > 0 and 0.9 < c["sparsity"] < 1 and c["status"] in ("ok", "partial")
        assert set(c["impls"]) == {"sgk", "dense", "sdpa", "flex"}
        sgk_r, dense_r = c["impls"]["sgk"], c["impls"]["dense"]
        for r in (sgk_r, dense_r):
            assert r["status"] == "ok" and r["ms"] > 0 and r["rel_err"] <= r["tol"] == 2e-2
            assert r["peak_mb"] is None  # not measured on the CPU
        assert set(sgk_r["errors"]) == ({"out"} if c["mode"] == "fwd" else {"out", "dq", "dk", "dv"})
        assert c["impls"]["sdpa"]["rel_err"] is None  # another function: not compared
        assert set(c["speedup"]) == set(c["memory_ratio"]) == {"dense", "sdpa", "flex"}
        assert c["speedup"]["dense"] > 0
        flex = c["impls"]["flex"]
        if c["mode"] == "fwdbwd":
            assert flex["status"] == "unavailable" and flex["message"]
        else:
            assert flex["status"] in ("ok", "unavailable")
            if flex["status"] == "ok":
                assert flex["rel_err"] <= 2e-2
    hl = doc["headline"]
    assert hl["case"]["L"] == 12288 and hl["fwdbwd"]["evaluated"] is False
    assert hl["fwdbwd"]["speedup_vs_dense"] > 0


def test_check_catches_a_wrong_implementation(monkeypatch):
    """A wrong implementation fails its check and is not timed; the run goes on."""
    import sgk

    def wrong(bench, inp):
        topo = inp.topology
        return AttnPrepared(lambda q, k, v: sgk.attention(q, k, v, topo) * 1.1)

    monkeypatch.setitem(AttentionBenchmark.preparers, "dense", wrong)
    bench = AttentionBenchmark(device="cpu", L=(64,), sparsity=(0.9,), impl_names=("sgk", "dense"), mode="fwdbwd")
    (r,) = bench.run(progress=None)
    assert r.impls["sgk"].status == "ok"
    d = r.impls["dense"]
    assert d.status == "failed" and d.ms is None and "tol" in d.message
    assert r.status == "partial"
    table = format_attention_table(bench)
    assert "FAIL" in table and "64" in table
    assert "not run" in format_headline(bench)


def test_cli_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "attention", "--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    for opt in ("--L", "--heads", "--sparsity", "--pattern", "--causal", "--mode", "--impl", "--out", "--plot", "--limit", "--filter"):
        assert opt in help_text
    assert "scaled_dot_product_attention" in help_text and "flex_attention" in help_text
    for argv, message in (
        (["--sparsity", "1.2"], "sparsities"),
        (["--L", "0"], "positive integers"),
        (["--impl", "sgk,cublas"], "unknown implementation cublas"),
        (["--mode", "bwd"], "invalid choice"),
        (["--filter", "nothing-matches", "--device", "cpu"], "matches none"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["bench", "attention", *argv])
        assert e.value.code == 2
        assert message in capsys.readouterr().err
