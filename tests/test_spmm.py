"""sgk.spmm: C = A·B (+ bias, ReLU) for CSR A and dense B.

Oracle: dense float64 torch math on the same (rounded) inputs. Kernel tests run on CUDA, or on
the CPU under the Triton interpreter (tests/conftest.py), on small problems.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import sgk
from sgk.ops import reference
from sgk.testing import assert_close

from _helpers import KERNEL_DTYPES, bf16_slack, csr_from_lengths, gen, op_args, poison_kernel_outputs, randn

pytestmark = [
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning"),
]


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    poison_kernel_outputs(monkeypatch)


def dense_spmm(a: sgk.CSRMatrix, b, bias=None, relu=False):
    """float64 dense oracle with batch broadcasting."""
    c = a.to_dense().double() @ b.double()
    if bias is not None:
        c = c + bias.double()[..., None]
    return c.clamp_min(0) if relu else c


def _check(actual, a, b, bias=None, relu=False, dtype=torch.float32, slack=1.0):
    expected = dense_spmm(a, b, bias, relu)
    assert actual.shape == expected.shape and actual.dtype == b.dtype
    assert_close(actual, expected, dtype, max(1, a.topology.max_row_length), slack=slack * bf16_slack(dtype))


# -- reference path ---------------------------------------------------------------------------------
@pytest.mark.parametrize("with_bias, relu", [(False, False), (True, True)], ids=["plain", "bias-relu"])
def test_reference_matches_dense_float64(with_bias, relu):
    g = gen(0)
    a = csr_from_lengths([3, 0, 5, 1, 0, 7], 10, g, batch=(2,), dtype=torch.float64)
    b = randn(10, 6, g=g, dtype=torch.float64)
    bias = randn(6, g=g, dtype=torch.float64) if with_bias else None
    act = "relu" if relu else None
    expected = dense_spmm(a, b, bias, relu)
    for c in (
        sgk.spmm(a, b, bias=bias, activation=act, method="reference"),
        sgk.spmm(a, b, bias=bias, activation=act),  # auto on the CPU: reference
        reference.spmm(a, b, bias, act),
    ):
        assert c.shape == (2, 6, 6) and c.dtype == torch.float64
        torch.testing.assert_close(c, expected, rtol=1e-13, atol=1e-13)


def test_reference_half_precision_accumulates_in_fp32():
    g = gen(1)
    a = csr_from_lengths([30, 2, 17], 32, g, dtype=torch.float16)
    b = randn(32, 5, g=g, dtype=torch.float16)
    c = sgk.spmm(a, b, method="reference")
    assert c.dtype == torch.float16
    assert_close(c, dense_spmm(a, b), torch.float16, 30)


# -- gradients (float64, reference path) ------------------------------------------------------------
def test_gradcheck_values_b_bias():
    g = gen(2)
    a = csr_from_lengths([2, 0, 3, 1], 5, g, dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    b = randn(5, 3, g=g, dtype=torch.float64).requires_grad_()
    bias = randn(4, g=g, dtype=torch.float64).requires_grad_()
    fn = lambda v, b, bias: sgk.spmm(a.with_values(v), b, bias=bias, method="reference")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v, b, bias))


def test_gradcheck_relu_batched_broadcast():
    g = gen(3)
    a = csr_from_lengths([2, 1, 3], 4, g, batch=(2, 1), dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    b = randn(3, 4, 2, g=g, dtype=torch.float64).requires_grad_()
    bias = randn(3, g=g, dtype=torch.float64).requires_grad_()
    pre = dense_spmm(a, b.detach(), bias.detach())
    assert pre.abs().min() > 1e-3 and (pre > 0).any() and (pre < 0).any()  # no ReLU kinks, both sides
    fn = lambda v, b, bias: sgk.spmm(a.with_values(v), b, bias=bias, activation="relu", method="reference")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v, b, bias))


# -- Triton kernels vs the float64 oracle ------------------------------------------------------------
@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
@pytest.mark.parametrize("with_bias, relu", [(False, False), (True, True)], ids=["plain", "bias-relu"])
def test_kernel_matches_reference(kernel_device, dtype, with_bias, relu):
    g = gen(4)
    a = sgk.CSRMatrix.random(24, 40, 0.75, distribution="skewed", row_cv=0.6, dtype=dtype, generator=g)
    a = a.to(kernel_device)
    b = randn(40, 20, g=g, dtype=dtype, device=kernel_device)
    bias = randn(24, g=g, dtype=dtype, device=kernel_device) if with_bias else None
    c = sgk.spmm(a, b, bias=bias, activation="relu" if relu else None, method="triton")
    _check(c, a, b, bias, relu, dtype)
    if relu:
        assert (c == 0).any() and (c > 0).any()


# (row lengths, k, n): each changes which lanes, chunks or programs are masked.
EDGE_CASES = {
    "empty-rows": ([3, 0, 2, 0, 0, 4, 1], 12, 12),
    "first-and-last-row-empty": ([0, 2, 5, 1, 0], 9, 8),
    "one-row-holds-all": ([0, 0, 40, 0, 0, 0], 48, 16),
    "nnz-0": ([0, 0, 0], 5, 7),
    "m-1": ([5], 8, 8),
    "n-1": ([2, 3, 0, 1], 6, 1),
    "odd-n": ([4, 1, 6, 2, 3], 10, 13),
    "k-1": ([1, 0, 1], 1, 5),
    "unaligned-row-starts": ([1, 3, 5, 7, 3, 1, 2], 16, 16),
    "long-rows-several-k-chunks": ([33, 17, 50, 16], 64, 9),
    "m-0": ([], 4, 3),
    "n-0": ([2, 1], 4, 0),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_kernel_edge_cases(kernel_device, case):
    lengths, k, n = EDGE_CASES[case]
    g = gen(5)
    a = csr_from_lengths(lengths, k, g, device=kernel_device)
    b = randn(k, n, g=g, device=kernel_device)
    _check(sgk.spmm(a, b, method="triton"), a, b)


@pytest.mark.parametrize("seed", range(4))
def test_kernel_random_shapes(kernel_device, seed):
    """Shapes, sparsity, skew and epilogue drawn from the seed: masks land in other places."""
    g = gen(1000 + seed)
    m, k, n = (int(torch.randint(1, hi, (1,), generator=g)) for hi in (40, 48, 40))
    sparsity = float(torch.empty(1).uniform_(0.3, 0.95, generator=g))
    dist = "skewed" if seed % 2 else "uniform"
    a = sgk.CSRMatrix.random(m, k, sparsity, distribution=dist, row_cv=0.9, generator=g).to(kernel_device)
    b = randn(k, n, g=g, device=kernel_device)
    bias = randn(m, g=g, device=kernel_device) if seed % 3 == 0 else None
    c = sgk.spmm(a, b, bias=bias, activation="relu" if seed % 2 else None, method="triton")
    _check(c, a, b, bias, relu=bool(seed % 2))


def test_kernel_no_nonzeros_gives_bias(kernel_device):
    g = gen(6)
    a = csr_from_lengths([0, 0, 0, 0, 0], 6, g, device=kernel_device)
    b = randn(6, 7, g=g, device=kernel_device)
    bias = randn(5, g=g, device=kernel_device)
    c = sgk.spmm(a, b, bias=bias, activation="relu", method="triton")
    torch.testing.assert_close(c.cpu(), bias.cpu().clamp_min(0)[:, None].expand(5, 7), rtol=0, atol=0)


@pytest.mark.parametrize("method", ["reference", "triton"])
@pytest.mark.parametrize(
    "lengths, k, n, vb, bb",
    [([0, 0, 0], 5, 4, (2,), ()), ([0, 0], 0, 4, (), (2,)), ([1, 2], 5, 0, (), (2,))],
    ids=["nnz-0-batched-values", "k-0-batched-b", "n-0-batched-b"],
)
def test_empty_batched(kernel_device, method, lengths, k, n, vb, bb):
    """A batch with an empty tail (nnz, k or n = 0): flattening the batch must not reshape(-1, 0)."""
    g = gen(61)
    a = csr_from_lengths(lengths, k, g, batch=vb, device=kernel_device)
    b = randn(*bb, k, n, g=g, device=kernel_device)
    _check(sgk.spmm(a, b, method=method), a, b)


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
@pytest.mark.parametrize("rows, block_k, block_n", [(1, 16, 16), (4, 16, 16), (2, 32, 32)])
def test_launcher_tiles(kernel_device, rows, block_k, block_n, prefetch):
    """The launcher with explicit configs: several column tiles (the last one partial), row groups
    that straddle the end of the swizzle, rows longer than BLOCK_K; plain and with the next step's
    indices prefetched."""
    from sgk.kernels import spmm as kmod

    g = gen(7)
    a = csr_from_lengths([0, 19, 3, 33, 0, 7, 1], 40, g, device=kernel_device)
    b = randn(40, 40, g=g, device=kernel_device)
    bias = randn(7, g=g, device=kernel_device)
    cfg = dataclasses.replace(kmod.default_config(7, 40, a.nnz), rows=rows, block_k=block_k, block_n=block_n,
                              prefetch=prefetch)
    c = kmod.spmm(
        a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], b[None], bias[None], True, config=cfg
    )
    assert c.shape == (1, 7, 40)
    _check(c[0], a, b, bias, relu=True)


def _all_candidates(kmod):
    """Every configuration the launcher may pick (the tuner times these on CUDA), deduplicated."""
    if not hasattr(kmod, "candidates"):
        return [kmod.default_config(64, 256, 64 * 8)]
    seen = []
    for n in (1, 8, 48, 256, 4096):
        for dtype in (torch.float32, torch.float16):
            for cfg in kmod.candidates(64, n, 64 * 8, dtype, compact=True, skew=kmod.SKEW_SPLIT):
                if cfg not in seen:
                    seen.append(cfg)
    return seen


def test_every_candidate_config(kernel_device):
    """Each tile shape the tuner can choose computes the right thing: rows longer than BLOCK_K,
    m not a multiple of ROWS, n not a multiple of BLOCK_N, bias and ReLU in the epilogue."""
    from sgk.kernels import spmm as kmod

    g = gen(70)
    lengths = [0, 37, 3, 64, 0, 7, 1, 12, 5, 0, 64, 2, 9]  # m = 13
    a = csr_from_lengths(lengths, 64, g, device=kernel_device)
    b = randn(64, 40, g=g, device=kernel_device)
    bias = randn(13, g=g, device=kernel_device)
    expected = dense_spmm(a, b, bias, relu=True)
    compact = a.topology.column_indices16
    assert compact is not None and compact.dtype == torch.int16
    for cfg in _all_candidates(kmod):
        c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], b[None], bias[None], True, config=cfg,
                      column_indices16=compact)
        assert_close(c[0], expected, torch.float32, 64, msg=f"config {cfg}:")


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("n", [32, 40], ids=["n-multiple-of-block", "n-partial-block"])
def test_1d_kernel_split_loop(kernel_device, rows, n, prefetch):
    """The 1d kernel's unmasked main loop (up to the program's shortest row) and masked tail:
    rows of one program with different lengths, lengths not multiples of the unroll depth, a
    program that straddles the end of the swizzle, N with and without a partial column tile;
    plain and with the next step's indices prefetched."""
    from sgk.kernels import spmm as kmod

    g = gen(71)
    lengths = [9, 0, 17, 3, 8, 8, 1, 25, 12, 6, 5]  # m = 11: the last program of 4 rows is partial
    a = csr_from_lengths(lengths, 30, g, device=kernel_device)
    b = randn(30, n, g=g, device=kernel_device)
    bias = randn(11, g=g, device=kernel_device)
    cfg = kmod.SpmmConfig(rows, 4, 32, 1, 1, "1d", prefetch=prefetch)
    c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], b[None], bias[None], True, config=cfg)
    _check(c[0], a, b, bias, relu=True)


def test_padding_never_reads_into_results(kernel_device):
    """Padding entries of a row must not touch its result: with inf in row 0 of B, rows that do
    not use column 0 stay finite in every candidate configuration (0 · inf would be NaN)."""
    from sgk.kernels import spmm as kmod

    g = gen(72)
    lengths = [5, 2, 7, 3, 1, 6]
    a = csr_from_lengths(lengths, 20, g, device=kernel_device, cols_from_end=True)  # columns 13-19
    b = randn(20, 24, g=g, device=kernel_device)
    b[0] = float("inf")
    for cfg in _all_candidates(kmod):
        c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], b[None], None, False, config=cfg,
                      column_indices16=a.topology.column_indices16)
        assert torch.isfinite(c).all(), f"config {cfg}: padding read row 0 of B into a result"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("split_k, rows", [(3, 1), (4, 4)])
@pytest.mark.parametrize("kind, chunk_major", [("1d", False), ("1d", True), ("flat", False), ("flat", True)],
                         ids=["1d", "1d-chunk-major", "flat", "flat-chunk-major"])
def test_split_k(kernel_device, dtype, split_k, rows, kind, chunk_major):
    """Split-K: rows shorter than the number of splits (empty chunks), a partial last program,
    batched values, the epilogue (bias, ReLU, cast) applied after the atomic partial sums; the
    chunk index fastest or (``chunk_major``) slowest over the grid."""
    from sgk.kernels import spmm as kmod

    g = gen(73)
    lengths = [9, 0, 17, 2, 8, 1, 25, 12, 6]
    a = csr_from_lengths(lengths, 30, g, batch=(2,), dtype=dtype, device=kernel_device)
    b = randn(30, 20, g=g, dtype=dtype, device=kernel_device)
    bias = randn(2, 9, g=g, dtype=dtype, device=kernel_device)
    cfg = kmod.SpmmConfig(rows, 4, 16, 1, 1, kind, split_k, chunk_major=chunk_major)
    c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values, b[None], bias, True, config=cfg)
    assert c.dtype == dtype
    _check(c, a, b, bias, relu=True, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("pack", [2, 4])
@pytest.mark.parametrize("lengths", [[3, 0, 8, 1, 0, 5, 2], [1, 9, 0, 4, 7, 2, 7], [2, 5, 0, 6, 1, 3], [4, 1, 7, 0, 3, 5]],
                         ids=["nnz%4=3", "nnz%4=2", "nnz%4=1", "nnz%4=0"])
def test_flat_packed(kernel_device, dtype, pack, lengths):
    """The flat kernel reading two or four entries to a 32- or 64-bit load: rows that start and end
    inside a word, an nnz that is not a multiple of the word (the last entries' word would cross
    the array's end: added after the loop), split-K chunks with odd bounds, bias and ReLU, batched
    values; values that are not aligned to the word, or whose batch stride is not a multiple of
    it, take the one-entry path."""
    from sgk.kernels import spmm as kmod

    g = gen(76)
    a = csr_from_lengths(lengths, 24, g, batch=(3,), dtype=dtype, device=kernel_device)
    nnz = a.nnz
    b = randn(24, 8, g=g, dtype=dtype, device=kernel_device)
    bias = randn(3, len(lengths), g=g, dtype=dtype, device=kernel_device)
    idx16 = a.topology.column_indices16

    def strided(stride):  # a's values with the given batch stride
        v = torch.zeros(3, stride, dtype=dtype, device=kernel_device)[:, :nnz]
        v.copy_(a.values)
        return v

    whole = -(-nnz // pack) * pack
    aligned, misaligned = strided(whole), strided(whole + 1)
    assert kmod.pack_allowed(idx16, aligned, pack) and not kmod.pack_allowed(idx16, misaligned, pack)
    for cfg in (kmod._f(2, 4, 8, 1, pack=pack), kmod._f(1, 2, 8, 1, pack=pack), kmod._f(4, 1, 8, 1, split_k=3, pack=pack),
                kmod.SpmmConfig(4, 1, 8, 1, 1, "flat", 3, True, pack, chunk_major=True)):
        for v in (aligned, misaligned):
            c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, v, b[None], bias, True, config=cfg,
                          column_indices16=idx16)
            _check(c, a, b, bias, relu=True, dtype=dtype)
    # unaligned values (a slice one entry in): the one-entry path, same result
    flat = torch.cat([a.values.new_zeros(1), a.values[0]])[1:]
    assert not kmod.pack_allowed(idx16, flat, pack)
    c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, flat, b, None, False, config=kmod._f(2, 4, 8, 1, pack=pack),
                  column_indices16=idx16)
    _check(c, a.with_values(a.values[0]), b, dtype=dtype)


def test_plan_fast_path(kernel_device, monkeypatch):
    """A repeated inference call with the same operand layout takes the cached plan (no checks, no
    op layers) and computes the same as the full path; a new layout, bias, an activation, a
    recorded autograd graph or another method take the full path; the plans live on the topology."""
    import importlib

    ops_spmm = importlib.import_module("sgk.ops.spmm")  # the module (sgk.ops.spmm is also the function's name)
    monkeypatch.setattr(ops_spmm, "select_backend", lambda op, method, t, shown=None: "triton")  # "auto" on the CPU
    g = gen(77)
    a = csr_from_lengths([5, 0, 9, 3, 12, 1], 20, g, dtype=torch.float16, device=kernel_device)
    b = randn(20, 8, g=g, dtype=torch.float16, device=kernel_device)
    expected = dense_spmm(a, b)
    first = sgk.spmm(a, b)
    plans = a.topology._cache["spmm_plans"]
    assert len(plans) == 1
    calls = []
    (key, plan), = plans.items()
    plans[key] = lambda v, x: calls.append(1) or plan(v, x)
    again = sgk.spmm(a, b)
    assert calls == [1]
    assert torch.equal(first, again)
    _check(again, a, b, dtype=torch.float16)
    bt = randn(8, 20, g=g, dtype=torch.float16, device=kernel_device).t()  # another layout: a second plan
    _check(sgk.spmm(a, bt), a, bt, dtype=torch.float16)
    assert len(plans) == 2
    bias = randn(6, g=g, dtype=torch.float16, device=kernel_device)
    _check(sgk.spmm(a, b, bias=bias, activation="relu"), a, b, bias, relu=True, dtype=torch.float16)
    assert calls == [1] and len(plans) == 2
    w = a.with_values(a.values.clone().requires_grad_())
    out = sgk.spmm(w, b)  # autograd: the full path, with gradients
    out.float().sum().backward()
    assert w.values.grad is not None and calls == [1]
    with pytest.raises(ValueError, match="rows"):  # the checks still run for a layout never seen
        sgk.spmm(a, randn(21, 8, g=g, dtype=torch.float16, device=kernel_device))
    assert expected.shape == first.shape


def test_compact_indices():
    """16-bit indices exist up to k = 32767 and are offered only at N <= 64; a compact
    configuration without them is refused, not run on the wrong indices."""
    from sgk.kernels import spmm as kmod

    small = sgk.CSRMatrix.random(4, 32767, 0.999, generator=gen(74))
    assert small.topology.column_indices16 is not None
    assert torch.equal(small.topology.column_indices16.long(), small.column_indices.long())
    assert sgk.CSRMatrix.random(4, 32768, 0.999, generator=gen(74)).topology.column_indices16 is None
    assert any(c.compact for c in kmod.candidates(64, 16, 512, torch.bfloat16, compact=True))
    assert not any(c.compact for c in kmod.candidates(64, 16, 512, torch.bfloat16, compact=False))
    assert not any(c.compact for c in kmod.candidates(64, 256, 512, torch.bfloat16, compact=True))
    a = sgk.CSRMatrix.random(8, 16, 0.5, generator=gen(75))
    cfg = dataclasses.replace(kmod.candidates(8, 16, a.nnz, compact=True)[0], compact=True)
    with pytest.raises(ValueError, match="needs the 16-bit column indices"):
        kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], torch.randn(1, 16, 16), config=cfg)


def test_skewed_rows_get_their_own_key_and_split_candidates(monkeypatch):
    """The tuner's key carries the longest row over the mean (two weights of one shape and nnz but
    a 2x and a 25x longest row are tuned apart), split-K is offered at large N only for skewed rows
    (not under deterministic algorithms), and sgk.spmm passes the topology's longest row down."""
    from sgk.kernels import spmm as kmod

    assert kmod.skew_bucket(512, 5120, 24) == 4 and kmod.skew_bucket(512, 5120, 254) == 32
    assert kmod.skew_bucket(512, 5120, -1) == 0 and kmod.skew_bucket(4, 0, 0) == 0 and kmod.skew_bucket(1, 1, 10**6) == 64
    assert kmod.tuning_key(512, 2048, 5120, 1, torch.float32, 4) != kmod.tuning_key(512, 2048, 5120, 1, torch.float32, 32)
    uniform = kmod.candidates(512, 2048, 5120, torch.float32, skew=2)
    skewed = kmod.candidates(512, 2048, 5120, torch.float32, skew=32)
    assert not any(c.split_k > 1 for c in uniform) and all(c in skewed for c in kmod._SPLIT_LARGE_N)
    assert uniform[0] == skewed[0]  # the heuristic default is unchanged
    torch.use_deterministic_algorithms(True)
    try:
        assert not any(c.split_k > 1 for c in kmod.candidates(512, 2048, 5120, torch.float32, skew=32))
    finally:
        torch.use_deterministic_algorithms(False)
    import importlib

    ops_spmm = importlib.import_module("sgk.ops.spmm")
    monkeypatch.setattr(ops_spmm, "select_backend", lambda op, method, t, shown=None: "triton")
    seen = []
    real = kmod.spmm
    monkeypatch.setattr(kmod, "spmm", lambda *a, **kw: seen.append(kw.get("max_row")) or real(*a, **kw))
    a = csr_from_lengths([5, 0, 40, 3], 64, gen(79))
    b = randn(64, 16, g=gen(80))
    _check(sgk.spmm(a, b), a, b)  # the plan path
    _check(sgk.spmm(a, b, activation="relu"), a, b, relu=True)  # the full path
    assert seen == [40, 40]


def test_deterministic_mode_excludes_split_k():
    from sgk.kernels import spmm as kmod

    assert any(c.split_k > 1 for c in kmod.candidates(512, 49, 512 * 400))
    torch.use_deterministic_algorithms(True)
    try:
        assert all(c.split_k == 1 for n in (8, 49, 256, 4096) for c in kmod.candidates(512, n, 512 * 400))
    finally:
        torch.use_deterministic_algorithms(False)


def _noncontiguous_b(kind, k, n, g, device):
    if kind == "transposed":
        return randn(n, k, g=g, device=device).t()
    if kind == "column-slice":
        return randn(k, 2 * n, g=g, device=device)[:, ::2]
    return randn(2 * k, n + 3, g=g, device=device)[::2, 1 : n + 1]  # row stride, offset start


@pytest.mark.parametrize("kind", ["transposed", "column-slice", "row-slice"])
def test_kernel_noncontiguous_b(kernel_device, kind):
    g = gen(8)
    a = csr_from_lengths([3, 0, 6, 2, 5], 14, g, device=kernel_device)
    b = _noncontiguous_b(kind, 14, 11, g, kernel_device)
    assert not b.is_contiguous()
    _check(sgk.spmm(a, b, method="triton"), a, b)


# (values batch, b batch, bias batch or None)
BATCH_CASES = {
    "values-batched": ((3,), (), None),
    "b-batched": ((), (3,), None),
    "all-batched": ((3,), (3,), (3,)),
    "bias-batched-only": ((), (), (3,)),
    "multi-dim-broadcast": ((2, 3), (3,), (2, 1)),
    "outer-broadcast": ((2, 1), (1, 3), ()),
}


@pytest.mark.parametrize("case", list(BATCH_CASES), ids=list(BATCH_CASES))
def test_kernel_batched(kernel_device, case):
    vb, bb, biasb = BATCH_CASES[case]
    g = gen(9)
    a = csr_from_lengths([2, 0, 4, 1, 3], 8, g, batch=vb, device=kernel_device)
    b = randn(*bb, 8, 6, g=g, device=kernel_device)
    bias = randn(*biasb, 5, g=g, device=kernel_device) if biasb is not None else None
    c = sgk.spmm(a, b, bias=bias, method="triton")
    expected_batch = torch.broadcast_shapes(vb, bb, biasb or ())
    assert c.shape == (*expected_batch, 5, 6)
    _check(c, a, b, bias)


def test_kernel_batched_b_strided_in_batch(kernel_device):
    """b batched through a permuted view (batch stride smaller than the row stride)."""
    g = gen(10)
    a = csr_from_lengths([2, 5, 1], 7, g, batch=(4,), device=kernel_device)
    b = randn(7, 4, 6, g=g, device=kernel_device).permute(1, 0, 2)
    _check(sgk.spmm(a, b, method="triton"), a, b)


# -- autograd through the kernels --------------------------------------------------------------------
def _grads(a, b, bias, relu, method, dtype):
    v = a.values.detach().to(dtype).requires_grad_()
    bb = b.detach().to(dtype).requires_grad_()
    bs = bias.detach().to(dtype).requires_grad_() if bias is not None else None
    c = sgk.spmm(a.with_values(v), bb, bias=bs, activation="relu" if relu else None, method=method)
    w = torch.linspace(-1.0, 1.5, c.numel(), dtype=torch.float64).reshape(c.shape).to(c)
    (c * w).sum().backward()
    return c, v.grad, bb.grad, (bs.grad if bs is not None else None)


@pytest.mark.parametrize(
    "vb, bb, biasb, relu",
    [((), (), (), True), ((2, 1), (3,), (2, 3), False)],
    ids=["bias-relu", "broadcast-batches"],
)
def test_kernel_gradients_match_reference(kernel_device, vb, bb, biasb, relu):
    g = gen(11)
    a = csr_from_lengths([3, 0, 5, 2, 1, 4], 9, g, batch=vb, device=kernel_device)
    b = randn(*bb, 9, 7, g=g, device=kernel_device)
    bias = randn(*biasb, 6, g=g, device=kernel_device)
    pre = dense_spmm(a, b, bias)
    assert pre.abs().min() > 1e-3  # the ReLU mask agrees between fp32 and fp64
    c, dv, db, dbias = _grads(a, b, bias, relu, "triton", torch.float32)
    _check(c, a, b, bias, relu)  # the forward of the autograd path
    a64 = a.to("cpu", torch.float64)
    _, dv64, db64, dbias64 = _grads(a64, b.cpu(), bias.cpu(), relu, "reference", torch.float64)
    assert dv.shape == a.values.shape and db.shape == b.shape and dbias.shape == bias.shape
    red = max(7, 6 * 3)  # d(values) sums over n (and the batch), dB over a column of A (and the batch)
    assert_close(dv, dv64, torch.float32, red)
    assert_close(db, db64, torch.float32, red)
    assert_close(dbias, dbias64, torch.float32, red)


def test_kernel_gradients_only_where_asked(kernel_device):
    g = gen(12)
    a = csr_from_lengths([2, 3, 1], 5, g, device=kernel_device)
    b = randn(5, 4, g=g, device=kernel_device).requires_grad_()
    sgk.spmm(a, b, method="triton").sum().backward()
    assert a.values.grad is None and b.grad is not None
    expected = a.to_dense().double().sum(0)[:, None].expand(5, 4)
    assert_close(b.grad, expected, torch.float32, 3)


def test_gradient_through_transpose(kernel_device):
    g = gen(13)
    a = csr_from_lengths([2, 0, 3, 1], 6, g, device=kernel_device)
    v = a.values.clone().requires_grad_()
    b = randn(4, 5, g=g, device=kernel_device)
    c = sgk.spmm(a.with_values(v).t(), b, method="triton")  # (6×4)·(4×5)
    _check(c, a.t(), b)
    c.sum().backward()
    dense_grad = (torch.ones(6, 5, dtype=torch.float64) @ b.double().cpu().t()).t()  # (4, 6)
    assert_close(v.grad, dense_grad[a.row_indices.long().cpu(), a.column_indices.long().cpu()], torch.float32, 5)


# -- errors ------------------------------------------------------------------------------------------
def _a():
    return csr_from_lengths([1, 2, 0, 1], 5, gen(14))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda a: sgk.spmm(a, torch.ones(5, 3, dtype=torch.int64)), TypeError, r"spmm\(\): b must have dtype in"),
        (
            lambda a: sgk.spmm(a, torch.ones(5, 3, dtype=torch.float16)),
            TypeError,
            r"spmm\(\): a and b must have the same dtype, got float32 and float16",
        ),
        (lambda a: sgk.spmm(a, torch.ones(6, 3)), ValueError, r"spmm\(\): a is 4×5 but b has 6 rows"),
        (lambda a: sgk.spmm(a, torch.ones(5)), ValueError, r"spmm\(\): b must have at least 2 dimensions"),
        (
            lambda a: sgk.spmm(a.to_dense(), torch.ones(5, 3)),
            TypeError,
            r"spmm\(\): a must be an sgk\.CSRMatrix, got Tensor \(build one with sgk\.CSRMatrix\.from_dense",
        ),
        (lambda a: sgk.spmm([[1.0]], torch.ones(5, 3)), TypeError, r"spmm\(\): a must be an sgk\.CSRMatrix, got list$"),
        (lambda a: sgk.spmm(a, [[1.0]]), TypeError, r"spmm\(\): b must be a torch\.Tensor, got list"),
        (lambda a: sgk.spmm(a, torch.eye(5).to_sparse()), TypeError, r"spmm\(\): b must be a dense \(strided\) tensor"),
        (lambda a: sgk.spmm(a, torch.ones(5, 3), activation="gelu"), ValueError, r"spmm\(\): activation must be one of"),
        (lambda a: sgk.spmm(a, torch.ones(5, 3), method="cuda"), ValueError, r"spmm\(\): method must be one of"),
        (
            lambda a: sgk.spmm(a.with_values(a.values[None].expand(2, -1)), torch.ones(3, 5, 3)),
            ValueError,
            r"spmm\(\): batch dimensions do not broadcast: a batch shape \(2,\), b batch shape \(3,\)",
        ),
        (
            lambda a: sgk.spmm(a, torch.ones(5, 3), bias=torch.ones(5)),
            ValueError,
            r"spmm\(\): bias must have shape \(\*batch, m\) with m = 4, got \(5,\)",
        ),
        (
            lambda a: sgk.spmm(a, torch.ones(5, 3), bias=torch.ones(4, dtype=torch.float64)),
            TypeError,
            r"spmm\(\): b and bias must have the same dtype",
        ),
        (
            lambda a: sgk.spmm(a, torch.ones(5, 3), bias=torch.tensor(1.0)),
            ValueError,
            r"spmm\(\): bias must have at least 1 dimensions",
        ),
        (
            lambda a: sgk.spmm(a, torch.ones(5, 3, device="meta")),
            ValueError,
            r"spmm\(\): all inputs must be on one device, but a is on cpu and b is on meta",
        ),
        (
            lambda a: sgk.spmm(a, torch.ones(5, 3), bias=[0.0] * 4),
            TypeError,
            r"spmm\(\): bias must be a torch.Tensor, got list",
        ),
    ],
    ids=[
        "int-b",
        "dtype-mismatch",
        "rows",
        "b-1d",
        "dense-a",
        "list-a",
        "list-b",
        "sparse-b",
        "activation",
        "method",
        "batch-broadcast",
        "bias-length",
        "bias-dtype",
        "bias-0d",
        "device",
        "list-bias",
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_a())


@pytest.mark.parametrize("method", ["reference", "triton"])
def test_empty_batch_gives_an_empty_result(kernel_device, method):
    """A batch dimension of 0 on any operand of spmm, sddmm or the block-sparse ops gives an empty
    result of the broadcast shape, as torch.matmul does (it used to become a batch of 1: a shape
    error on the reference path, an out-of-bounds read in the kernels)."""
    if method == "triton" and kernel_device.type != "cpu" and not torch.cuda.is_available():
        pytest.skip("no kernel device")
    dev = kernel_device if method == "triton" else torch.device("cpu")
    a = sgk.CSRMatrix.random(4, 5, 0.5, generator=gen(31)).to(dev)
    assert sgk.spmm(a, torch.randn(0, 5, 3, device=dev), method=method).shape == (0, 4, 3)
    assert sgk.spmm(a.with_values(torch.randn(0, a.nnz, device=dev)), torch.randn(5, 3, device=dev),
                    method=method).shape == (0, 4, 3)
    assert sgk.spmm(a, torch.randn(0, 5, 3, device=dev), bias=torch.randn(4, device=dev), activation="relu",
                    method=method).shape == (0, 4, 3)
    assert sgk.sddmm(torch.randn(0, 4, 2, device=dev), torch.randn(5, 2, device=dev), a,
                     method=method).values.shape == (0, a.nnz)
    w = sgk.BSRMatrix.random(32, 32, 16, 0.5, generator=gen(32)).to(dev)
    assert sgk.bsr_spmm(w, torch.randn(0, 32, 3, device=dev), method=method).shape == (0, 32, 3)
    assert sgk.bsr_sddmm(torch.randn(0, 32, 16, device=dev), torch.randn(32, 16, device=dev), w,
                         method=method).values.shape == (0, w.nnz_blocks, 16, 16)


def test_triton_refuses_float64(kernel_device):
    a = _a().to(kernel_device, torch.float64)
    with pytest.raises(TypeError, match=r"spmm\(\): the Triton kernels take float32, float16 or bfloat16"):
        sgk.spmm(a, torch.ones(5, 3, dtype=torch.float64, device=kernel_device), method="triton")


def test_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match=r"spmm\(\): method='triton' needs CUDA tensors"):
        sgk.spmm(_a(), torch.ones(5, 3), method="triton")


# -- registered op ---------------------------------------------------------------------------------
def _raw_args(a, values, b, bias, relu, backend):
    return op_args(torch.ops.sgk.spmm.default, a, values=values, b=b, bias=bias, relu=relu, backend=backend)


def test_registered_op_exists():
    assert hasattr(torch.ops.sgk, "spmm")
    g = gen(15)
    a = csr_from_lengths([1, 3, 0], 4, g, dtype=torch.float64)
    b = randn(1, 4, 2, g=g, dtype=torch.float64)
    c = torch.ops.sgk.spmm(*_raw_args(a, a.values[None], b, None, False, "reference"))
    torch.testing.assert_close(c[0], dense_spmm(a, b[0]))


# opcheck: schema, fake (meta) implementation vs the real output, AOT dispatch. Inputs do not
# require grad: autograd lives in sgk.ops (a torch.autograd.Function around the op), not in a
# register_autograd formula, so test_autograd_registration has nothing to check.
@pytest.mark.parametrize(
    "vb, bb, biasb, relu",
    [(1, 1, None, False), (1, 3, 3, True), (3, 1, 1, False)],
    ids=["plain", "batched-b-bias-relu", "batched-values"],
)
def test_opcheck_reference(vb, bb, biasb, relu):
    g = gen(16)
    a = csr_from_lengths([2, 0, 3, 1], 5, g, dtype=torch.float64)
    values = randn(vb, a.nnz, g=g, dtype=torch.float64)
    b = randn(bb, 5, 3, g=g, dtype=torch.float64)
    bias = randn(biasb, 4, g=g, dtype=torch.float64) if biasb else None
    torch.library.opcheck(torch.ops.sgk.spmm.default, _raw_args(a, values, b, bias, relu, "reference"))


def test_opcheck_triton(kernel_device):
    g = gen(17)
    a = csr_from_lengths([2, 0, 3, 1], 5, g, device=kernel_device)
    values = randn(2, a.nnz, g=g, device=kernel_device)
    b = randn(1, 5, 3, g=g, device=kernel_device)
    bias = randn(2, 4, g=g, device=kernel_device)
    torch.library.opcheck(torch.ops.sgk.spmm.default, _raw_args(a, values, b, bias, True, "triton"))


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["plain", "bias"])
def test_opcheck_unbatched(kernel_device, backend, with_bias):
    """The registered op also takes unbatched operands (values (nnz), b (k, n), bias (m)) and
    returns C (m, n): the eager fast path passes them without making views."""
    if backend == "reference" and kernel_device.type == "cuda":
        pytest.skip("the reference backend is checked on the CPU")
    g = gen(19)
    a = csr_from_lengths([2, 0, 3, 1], 5, g, device=kernel_device)
    b = randn(5, 3, g=g, device=kernel_device)
    bias = randn(4, g=g, device=kernel_device) if with_bias else None
    args = _raw_args(a, a.values, b, bias, with_bias, backend)
    out = torch.ops.sgk.spmm.default(*args)
    assert out.shape == (4, 3)
    _check(out, a, b, bias, relu=with_bias)
    torch.library.opcheck(torch.ops.sgk.spmm.default, args)


# -- torch.compile --------------------------------------------------------------------------------
# aot_eager traces through the registered ops' fake implementations and the autograd.Function
# without needing a C++ compiler on this machine.
def _fresh():
    return csr_from_lengths([2, 0, 3, 1, 4], 6, gen(18))


def _warm(a):
    for topo in (a.topology, a.topology.transpose()[0]):
        _ = topo.row_swizzle, topo.row_indices


def test_compile_matches_eager():
    torch._dynamo.reset()
    b = randn(6, 3, g=gen(19)).requires_grad_()
    bias = randn(5, g=gen(20)).requires_grad_()
    fn = lambda a, b, bias: sgk.spmm(a, b, bias=bias, activation="relu", method="reference").sin()  # noqa: E731
    out = torch.compile(fn, backend="aot_eager")(_fresh(), b, bias)
    out.sum().backward()
    grads = b.grad.clone(), bias.grad.clone()
    b.grad = bias.grad = None
    ref = fn(_fresh(), b, bias)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grads, (b.grad, bias.grad))


def test_compile_fullgraph_attention_chain():
    """sddmm → sparse_softmax → spmm in one graph, forward and backward (metadata already cached)."""
    torch._dynamo.reset()
    a = _fresh()
    _warm(a)
    g = gen(21)
    x, y = randn(5, 4, g=g).requires_grad_(), randn(6, 4, g=g).requires_grad_()

    def chain(x, y):
        s = sgk.sddmm(x, y, a, method="reference")
        p = sgk.sparse_softmax(s, scale=0.5, method="reference")
        return sgk.spmm(p, y, method="reference")

    out = torch.compile(chain, backend="aot_eager", fullgraph=True)(x, y)
    out.sum().backward()
    grads = x.grad.clone(), y.grad.clone()
    x.grad = y.grad = None
    ref = chain(x, y)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grads, (x.grad, y.grad))


def test_row_bounds_checked_and_held(kernel_device):
    """The kernels read row_bounds' ends at m + slot: one that is not a contiguous (2, m) tensor of
    the offsets' dtype is refused by name, not read wrong; a plan made without bounds holds its
    own (its record keeps only their address)."""
    from sgk.kernels import spmm as kmod

    a = csr_from_lengths([2, 0, 3, 1, 4], 6, gen(25), device=kernel_device)
    t = a.topology
    b = randn(6, 3, g=gen(26), device=kernel_device)
    args = (t.row_offsets, t.column_indices, t.row_swizzle, a.values, b)
    cfg = kmod.SpmmConfig(2, 8, 16, 1, 1, "1d")
    torch.testing.assert_close(kmod.spmm(*args, config=cfg, row_bounds=t.row_bounds), a.to_dense() @ b)
    for bad in (t.row_bounds.t().contiguous().t(), t.row_bounds[:, :4], t.row_bounds.long(), t.row_bounds.to("meta")):
        with pytest.raises(ValueError, match="row_bounds must be a contiguous"):
            kmod.spmm(*args, config=cfg, row_bounds=bad)
    plan = kmod.SpmmPlan(t.row_offsets, t.column_indices, t.row_swizzle)
    assert torch.equal(plan._tables[-1], t.row_bounds)


def test_compile_fullgraph_kernels_backward(kernel_device):
    """The kernels' path (not the reference) in one graph with its backward: every topology table
    the kernels read is filled by prepare() or left out inside the trace, never filled inside the
    autograd.Function (a side effect dynamo refuses under fullgraph=True)."""
    torch._dynamo.reset()
    a = csr_from_lengths([2, 0, 3, 1, 4], 6, gen(18), device=kernel_device)
    a.topology.prepare(transpose=True)
    b = randn(6, 3, g=gen(19), device=kernel_device).requires_grad_()
    out = torch.compile(lambda a, b: sgk.spmm(a, b, method="triton"), backend="aot_eager", fullgraph=True)(a, b)
    out.sum().backward()
    torch.testing.assert_close(out, a.to_dense() @ b.detach())
    torch.testing.assert_close(b.grad, a.to_dense().sum(0)[:, None].expand(6, 3))


_TORCH = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])


@pytest.mark.xfail(
    _TORCH < (2, 13),
    strict=False,
    reason="torch 2.11's dynamo cannot trace Topology.transpose() (data-dependent bincount/cumsum) when "
    "prepare() computes it inside the compiled region: warm the topology first (torch 2.13 traces it)",
)
def test_compile_fullgraph_fresh_topology():
    """Regression: the backward used to fill Topology's lazy cache inside the autograd.Function,
    a side effect dynamo refuses under fullgraph=True. Now the ops prepare it before the Function."""
    torch._dynamo.reset()
    b = randn(6, 3, g=gen(22)).requires_grad_()
    fn = lambda a, b: sgk.spmm(a, b, method="reference")  # noqa: E731
    a = _fresh()
    out = torch.compile(fn, backend="aot_eager", fullgraph=True)(a, b)
    out.sum().backward()
    torch.testing.assert_close(out, dense_spmm(a, b).float())
    torch.testing.assert_close(b.grad, a.to_dense().sum(0)[:, None].expand(6, 3))


# -- GPU (H100): moderately large problems ------------------------------------------------------------
GPU_DTYPES = KERNEL_DTYPES


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("n", [256, 2048])
@pytest.mark.parametrize("distribution", ["uniform", "skewed"])
def test_gpu_large(dtype, n, distribution):
    g = gen(100)
    a = sgk.CSRMatrix.random(2048, 1024, 0.9, distribution=distribution, row_cv=0.8, dtype=dtype, generator=g)
    a = a.to("cuda")
    b = randn(1024, n, g=g, dtype=dtype, device="cuda")
    bias = randn(2048, g=g, dtype=dtype, device="cuda")
    c = sgk.spmm(a, b, bias=bias, activation="relu")  # auto: the kernel on CUDA
    _check(c, a, b, bias, relu=True, dtype=dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
def test_gpu_batched_heads_and_gradients(dtype):
    g = gen(101)
    a = sgk.CSRMatrix.random(512, 512, 0.9, batch_shape=(8,), dtype=dtype, generator=g).to("cuda")
    b = randn(8, 512, 64, g=g, dtype=dtype, device="cuda")
    _check(sgk.spmm(a, b), a, b, dtype=dtype)
    c, dv, db, _ = _grads(a, b, None, False, "triton", dtype)
    _, dv64, db64, _ = _grads(a.to(torch.float64), b, None, False, "reference", torch.float64)
    # flash-attention rule: at most twice plain PyTorch's error at this precision, plus a small atol
    dense = a.to_dense().detach().to(dtype).requires_grad_()
    bt = b.detach().clone().requires_grad_()
    c_t = dense @ bt
    w = torch.linspace(-1.0, 1.5, c_t.numel(), dtype=torch.float64).reshape(c_t.shape).to(c_t)
    (c_t * w).sum().backward()
    torch_err = (bt.grad.double() - db64).abs().max().item()
    assert (db.double() - db64).abs().max().item() <= 2 * torch_err + 1e-3
    assert_close(dv, dv64, dtype, 512)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["auto", "tile", "1d", "1d-split", "flat", "flat-split"])
def test_gpu_offsets_beyond_int32(kind):
    """B has k·n > 2**31 elements and A's columns sit near the end of k: B's offsets overflow int32.
    ``auto``: sgk.spmm's own choice; the others force each kernel family."""
    from sgk.kernels import spmm as kmod

    k, n, m = 2**16 + 64, 2**15 + 8, 64
    assert k * n > 2**31
    dtype = torch.float16
    g = gen(102)
    a = csr_from_lengths([4] * m, k, g, dtype=dtype, cols_from_end=True).to("cuda")
    b = torch.randn(k, n, dtype=dtype, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    if kind == "auto":
        c = sgk.spmm(a, b)
    else:
        cfg = {"tile": kmod.SpmmConfig(4, 4, 256, 2, 1, "tile"), "1d": kmod.SpmmConfig(4, 4, 128, 2, 1, "1d"),
               "1d-split": kmod.SpmmConfig(4, 4, 128, 2, 1, "1d", 2), "flat": kmod.SpmmConfig(2, 16, 64, 4, 1, "flat"),
               "flat-split": kmod.SpmmConfig(2, 16, 64, 4, 1, "flat", 2)}[kind]
        c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values, b, config=cfg)
    assert c.shape == (m, n)
    for row in (0, m // 2, m - 1):
        lo, hi = int(a.row_offsets[row]), int(a.row_offsets[row + 1])
        cols = a.column_indices[lo:hi].long()
        expected = (a.values[lo:hi].double()[:, None] * b[cols].double()).sum(0)
        assert_close(c[row], expected, dtype, hi - lo)
    del b
    torch.cuda.empty_cache()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_gpu_every_candidate_config(dtype):
    """Every configuration the tuner may pick (tile, 1d, split-K, compact indices) on the GPU at a
    size the interpreter cannot reach, with bias and ReLU, against float64."""
    from sgk.kernels import spmm as kmod

    g = gen(103)
    a = sgk.CSRMatrix.random(1000, 700, 0.9, distribution="skewed", row_cv=0.8, dtype=dtype, generator=g).to("cuda")
    bias = randn(1000, g=g, dtype=dtype, device="cuda")
    for n in (1, 8, 16, 48, 300, 2048):
        b = randn(700, n, g=g, dtype=dtype, device="cuda")
        expected = dense_spmm(a, b, bias, relu=True)
        cands = kmod.candidates(1000, n, a.nnz, dtype, compact=True)
        # and the split gathers with the chunk index slowest (not offered yet: benchmarks/probe_chunk.py)
        cands += [dataclasses.replace(c, chunk_major=True) for c in cands if c.split_k > 1 and c.kind in ("1d", "flat")]
        cands += [kmod.SpmmConfig(2, 16, max(8, 1 << (n - 1).bit_length()) if n <= 64 else 64, 1, 1, "flat", 8, True,
                                  chunk_major=True)]
        for cfg in cands:
            c = kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values[None], b[None], bias[None], True,
                          config=cfg, column_indices16=a.topology.column_indices16)
            assert_close(c[0], expected, dtype, a.topology.max_row_length, msg=f"n={n} config {cfg}:")


def test_tuning_key_separates_decode_sparsities():
    """Decode weights at 50% and 80% sparsity want different kernels (H200 probe): their keys
    differ, while a small change of nnz (a retrained mask) keeps the key."""
    from sgk.kernels.spmm import tuning_key

    m = k = 8192
    key = lambda s: tuning_key(m, 8, round((1 - s) * m * k), 1, torch.bfloat16)  # noqa: E731
    assert len({key(0.5), key(0.8), key(0.9), key(0.95)}) == 4
    assert key(0.8) == key(0.81)


@pytest.mark.gpu
def test_gpu_capture_does_not_fix_the_heuristic():
    """A problem first met inside a CUDA-graph capture runs the untimed heuristic there, and the
    launcher does not keep that choice: the first eager call afterwards tunes it."""
    from sgk.kernels import spmm as kmod

    g = gen(78)
    a = sgk.CSRMatrix.random(3000, 1000, 0.9, dtype=torch.float16, generator=g).to("cuda")
    b = randn(1000, 72, g=g, dtype=torch.float16, device="cuda")
    t = a.topology
    run = lambda: kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b)  # noqa: E731
    before = len(kmod._CHOSEN)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = run()
    assert len(kmod._CHOSEN) == before
    graph.replay()
    torch.cuda.synchronize()
    _check(out, a, b, dtype=torch.float16)
    _check(run(), a, b, dtype=torch.float16)
    assert len(kmod._CHOSEN) == before + 1


@pytest.mark.gpu
@pytest.mark.parametrize("config,dtype", [
    ("SpmmConfig(rows=4, block_k=32, block_n=64, num_warps=4)", torch.float32),
    ("SpmmConfig(rows=1, block_k=8, block_n=64, num_warps=1, kind='1d')", torch.bfloat16),
    ("SpmmConfig(rows=2, block_k=8, block_n=8, num_warps=1, kind='flat', compact=True, pack=4)", torch.bfloat16),
    ("SpmmConfig(rows=2, block_k=16, block_n=8, num_warps=1, kind='1d', split_k=2)", torch.bfloat16),
    ("SpmmConfig(rows=2, block_k=16, block_n=8, num_warps=1, kind='1d', split_k=3)", torch.float32),
    ("SpmmConfig(rows=64, block_k=128, block_n=16, num_warps=4, num_stages=3, kind='bitmap', split_k=0)", torch.bfloat16),
    ("SpmmConfig(rows=64, block_k=64, block_n=16, num_warps=4, num_stages=3, kind='bitmap', split_k=2)", torch.bfloat16),
])
def test_gpu_plan_repeats_its_recorded_launch(config, dtype, monkeypatch):
    """sgk.spmm's plan repeats its first call's launch with only the operands' addresses new: right
    on fresh operands, on values and b of another alignment (the record refuses, the full path runs
    and records anew: packed loads must not meet an address they were not chosen for), after a
    change of the deterministic setting. Split-K repeats its zeroed accumulator and cast; the
    bitmap kernel is recorded unsplit (its split here resolves to one K range) and split (with the
    stream's partial-sum and arrival buffers)."""
    from sgk.kernels import spmm as kmod

    cfg = kmod.parse_config(config)
    monkeypatch.setattr(kmod._TUNER, "choose", lambda key, cands, run, device: cfg)
    monkeypatch.setattr(kmod, "_CHOSEN", {})  # forced choices must not outlive the test
    g = gen(81)
    a = sgk.CSRMatrix.random(300, 200, 0.8, dtype=dtype, generator=g).to("cuda")
    if cfg.kind == "bitmap":
        a.topology.prepare(bitmap=True)
    full = []
    real = kmod.spmm
    monkeypatch.setattr(kmod, "spmm", lambda *args, **kw: full.append(1) or real(*args, **kw))
    for step in range(8):
        shift = step % 3 == 2  # every third call: values and b one element off their allocation
        vals = torch.randn(a.nnz + 1, generator=g).cuda().to(dtype)
        vals = vals[1:] if shift else vals[:-1]
        bb = torch.randn(200 * 8 + 1, generator=g).cuda().to(dtype)
        bb = (bb[1:] if shift else bb[:-1]).view(200, 8)
        w = a.with_values(vals)
        before = len(full)
        _check(sgk.spmm(w, bb), w, bb, dtype=dtype)
        if step in (1, 4, 7):  # same alignment as the call before: the record served it, if any
            assert len(full) == before, step
    assert kmod.last_config == cfg
    (plan,) = a.topology._cache["spmm_plans"].values()
    assert plan._state is not None
    # a split bitmap launch recorded with its buffer sizes (split_k=2 here: 4 K tiles in 2 ranges)
    assert (plan._state[4] is not None) == (cfg.kind == "bitmap" and cfg.split_k > 1)
    torch.use_deterministic_algorithms(True, warn_only=True)  # another setting: the full path again
    try:
        before = len(full)
        _check(sgk.spmm(a, bb), a, bb, dtype=dtype)
        assert len(full) == before + 1
    finally:
        torch.use_deterministic_algorithms(False)
