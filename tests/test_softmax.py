"""sgk.sparse_softmax: softmax over each CSR row's nonzeros (absent entries count as −∞).

Oracle: a dense float64 softmax over a matrix filled with −∞ off the pattern (rows with no finite
entry give 0). Kernel tests run on CUDA, or on the CPU under the Triton interpreter.
"""
from __future__ import annotations

import math

import pytest
import torch

import sgk
from sgk.ops import reference
from sgk.testing import assert_close

from _helpers import KERNEL_DTYPES, bf16_slack, csr_from_lengths, gen, op_args, poison_kernel_outputs, randn

pytestmark = [
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
    # the interpreter evaluates both branches of tl.where(total > 0, 1 / total, 0)
    pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),
    # the interpreter also evaluates exp() on masked-off padding lanes (never stored)
    pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning"),
]

INF = float("inf")


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    poison_kernel_outputs(monkeypatch)


def dense_softmax(a: sgk.CSRMatrix, scale: float = 1.0, causal: bool = False) -> torch.Tensor:
    """float64 oracle: (*batch, nnz) softmax values of scale·a over each row (causal: columns > row
    count as absent)."""
    m, k = a.shape
    rows, cols = a.row_indices.long().cpu(), a.column_indices.long().cpu()
    dense = torch.full((*a.batch_shape, m, k), -INF, dtype=torch.float64)
    dense[..., rows, cols] = a.values.detach().double().cpu() * scale
    if causal:
        dense = dense.masked_fill(torch.ones(m, k, dtype=torch.bool).triu(1), -INF)
    return torch.nan_to_num(torch.softmax(dense, -1), nan=0.0)[..., rows, cols]


def _check(out, a, scale=1.0, dtype=torch.float32, slack=1.0, causal=False):
    assert isinstance(out, sgk.CSRMatrix) and out.topology is a.topology
    assert out.values.shape == a.values.shape and out.dtype == a.dtype
    assert not out.values.isnan().any()
    length = max(1, a.topology.max_row_length)
    expected = dense_softmax(a, scale, causal)
    assert_close(out.values, expected, dtype, length, slack=slack * bf16_slack(dtype))


def _row_sums(out: sgk.CSRMatrix) -> torch.Tensor:
    m = out.shape[0]
    rows = out.row_indices.long().cpu()
    vals = out.values.detach().double().cpu()
    return torch.zeros(*out.batch_shape, m, dtype=torch.float64).index_add(-1, rows, vals)


# -- reference path ---------------------------------------------------------------------------------
def test_reference_matches_dense_float64():
    g = gen(0)
    a = csr_from_lengths([3, 0, 5, 1, 0, 7], 10, g, batch=(2,), dtype=torch.float64)
    for scale in (1.0, 0.25):
        expected = dense_softmax(a, scale)
        for vals in (
            sgk.sparse_softmax(a, scale=scale, method="reference").values,
            sgk.sparse_softmax(a, scale=scale).values,  # auto on the CPU: reference
            reference.sparse_softmax(a, scale),
        ):
            assert vals.shape == (2, a.nnz) and vals.dtype == torch.float64
            torch.testing.assert_close(vals, expected, rtol=1e-13, atol=1e-15)


def test_gradcheck_values_with_scale():
    g = gen(1)
    a = csr_from_lengths([3, 0, 1, 4], 6, g, batch=(2,), dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    fn = lambda v: sgk.sparse_softmax(a.with_values(v), scale=0.7, method="reference").values  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v,))


# -- Triton kernels vs the float64 oracle ------------------------------------------------------------
@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
def test_kernel_matches_reference(kernel_device, dtype):
    g = gen(2)
    a = sgk.CSRMatrix.random(24, 80, 0.6, distribution="skewed", row_cv=0.6, dtype=dtype, generator=g)
    a = a.to(kernel_device)
    out = sgk.sparse_softmax(a, scale=0.35, method="triton")
    _check(out, a, 0.35, dtype)
    sums = _row_sums(out)
    assert_close(sums, torch.ones_like(sums), dtype, a.topology.max_row_length, slack=bf16_slack(dtype))


# row lengths and k: each changes which lanes, chunks or programs are masked.
EDGE_CASES = {
    "empty-rows": ([3, 0, 2, 0, 0, 4, 1], 12),
    "first-and-last-row-empty": ([0, 2, 5, 1, 0], 9),
    "one-row-holds-all": ([0, 0, 70, 0, 0, 0], 80),  # several BLOCK chunks, the last partial
    "m-1": ([5], 8),
    "rows-of-one": ([1, 1, 0, 1], 3),
    "unaligned-row-starts": ([1, 3, 5, 7, 3, 1, 2], 16),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_kernel_edge_cases(kernel_device, case):
    lengths, k = EDGE_CASES[case]
    a = csr_from_lengths(lengths, k, gen(3), device=kernel_device)
    out = sgk.sparse_softmax(a, method="triton")
    _check(out, a)
    sums = _row_sums(out)
    nonempty = torch.tensor(lengths, dtype=torch.bool)
    assert_close(sums[nonempty], torch.ones(int(nonempty.sum()), dtype=torch.float64), torch.float32, max(lengths or [1]))
    assert bool((sums[~nonempty] == 0).all())


@pytest.mark.parametrize("seed", range(4))
def test_kernel_random_shapes(kernel_device, seed):
    """Shapes, sparsity and skew drawn from the seed: masks land in other places."""
    g = gen(1000 + seed)
    m, k = (int(torch.randint(1, hi, (1,), generator=g)) for hi in (40, 100))
    sparsity = float(torch.empty(1).uniform_(0.2, 0.95, generator=g))
    dist = "skewed" if seed % 2 else "uniform"
    a = sgk.CSRMatrix.random(m, k, sparsity, distribution=dist, row_cv=0.9, generator=g).to(kernel_device)
    _check(sgk.sparse_softmax(a, scale=0.5 + seed, method="triton"), a, 0.5 + seed)


@pytest.mark.parametrize("method", ["reference", "triton"])
@pytest.mark.parametrize("lengths, batch", [([0, 0, 0], ()), ([], (2,))], ids=["nnz-0", "m-0-batched"])
def test_no_nonzeros(kernel_device, method, lengths, batch):
    """Regression: flattening (*batch, 0) values must not reshape(-1, 0)."""
    a = csr_from_lengths(lengths, 4, gen(3), batch=batch, device=kernel_device)
    v = a.values.clone().requires_grad_()
    out = sgk.sparse_softmax(a.with_values(v), method=method)
    assert out.values.shape == (*batch, 0)
    out.values.sum().backward()
    assert v.grad.shape == (*batch, 0)


@pytest.mark.parametrize("method", ["reference", "triton"])
def test_rows_of_minus_inf_give_zeros(kernel_device, method):
    g = gen(4)
    a = csr_from_lengths([4, 40, 3, 5], 48, g, device=kernel_device)
    v = a.values.clone()
    v[0:4] = -INF  # row 0: all −inf
    v[4:44] = -INF  # row 1: all −inf, longer than one block
    v[44] = -INF  # row 2: one −inf entry among finite ones
    a = a.with_values(v)
    out = sgk.sparse_softmax(a, method=method)
    assert not out.values.isnan().any()
    assert bool((out.values[:44] == 0).all()) and float(out.values[44]) == 0.0
    _check(out, a)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["float32", "float16"])
def test_large_values_are_stable(kernel_device, dtype):
    g = gen(5)
    a = csr_from_lengths([6, 0, 37, 2], 40, g, device=kernel_device)
    a = a.with_values((1e4 + 3 * a.values).to(dtype))
    a_neg = a.with_values(-a.values)
    for x in (a, a_neg):
        out = sgk.sparse_softmax(x, method="triton")
        assert bool(torch.isfinite(out.values).all())
        _check(out, x, dtype=dtype)


def test_kernel_batched_values(kernel_device):
    a = csr_from_lengths([2, 0, 4, 1, 3], 8, gen(6), batch=(2, 3), device=kernel_device)
    out = sgk.sparse_softmax(a, scale=1.5, method="triton")
    assert out.batch_shape == (2, 3)
    _check(out, a, 1.5)


def test_kernel_noncontiguous_values(kernel_device):
    """Batched values through a transposed view (sparse_softmax makes them contiguous)."""
    g = gen(7)
    a = csr_from_lengths([2, 5, 0, 3], 7, g, device=kernel_device)
    v = randn(a.nnz, 3, g=g, device=kernel_device).t()
    assert not v.is_contiguous()
    b = a.with_values(v)
    _check(sgk.sparse_softmax(b, method="triton"), b)


@pytest.mark.parametrize("scale", [-0.5, 0.0])
def test_kernel_nonpositive_scale(kernel_device, scale):
    """Regression: padding lanes loaded as -inf were multiplied by scale (+inf for scale < 0, NaN for 0)."""
    a = csr_from_lengths([5, 3, 0, 7], 10, gen(8), device=kernel_device)
    _check(sgk.sparse_softmax(a, scale=scale, method="triton"), a, scale)


# -- causal masking -----------------------------------------------------------------------------------
def _causal_pattern(device, batch=()):
    """6×48 with every causal case: row 0 straddles the diagonal, row 1 lies wholly above it (all
    masked: zeros), row 2 is empty, row 4 holds only its diagonal entry, row 5 is longer than one
    block and straddles the diagonal."""
    rows = [[0, 1, 5, 7], [3, 9], [], [0, 2, 3, 4, 40], [4], [c for c in range(48) if c not in (10, 20, 30)]]
    offsets = torch.tensor([0] + [len(r) for r in rows]).cumsum(0)
    cols = torch.tensor([c for r in rows for c in r])
    values = randn(*batch, cols.numel(), g=gen(12))
    return sgk.CSRMatrix(offsets, cols, values, (6, 48)).to(device)


@pytest.mark.parametrize("method", ["reference", "triton"])
def test_causal(kernel_device, method):
    a = _causal_pattern(kernel_device, batch=(2,))
    a.validate()
    out = sgk.sparse_softmax(a, scale=0.5, causal=True, method=method)
    _check(out, a, 0.5, causal=True)
    rows, cols = a.row_indices.long().cpu(), a.column_indices.long().cpu()
    above = cols > rows
    assert above.any() and (~above).any()
    assert bool((out.values.cpu()[..., above] == 0).all())
    sums = _row_sums(out)
    has_visible = torch.zeros(6, dtype=torch.bool).index_fill(0, rows[~above], True)
    assert_close(sums[..., has_visible], torch.ones_like(sums[..., has_visible]), torch.float32, 45)
    assert bool((sums[..., ~has_visible] == 0).all())


def test_causal_gradients_match_reference(kernel_device):
    a = _causal_pattern(kernel_device)
    dv = _grad(a, "triton", torch.float32, 0.8, causal=True)
    dv64 = _grad(a.to("cpu"), "reference", torch.float64, 0.8, causal=True)
    rows, cols = a.row_indices.long().cpu(), a.column_indices.long().cpu()
    assert bool((dv.cpu()[cols > rows] == 0).all())
    assert_close(dv, dv64, torch.float32, 45)


# -- autograd through the kernels --------------------------------------------------------------------
def _grad(a, method, dtype, scale, causal=False):
    v = a.values.detach().to(dtype).requires_grad_()
    out_csr = sgk.sparse_softmax(a.with_values(v), scale=scale, causal=causal, method=method)
    _check(out_csr, a.with_values(v), scale, dtype, causal=causal)  # the forward of the autograd path
    out = out_csr.values
    w = torch.linspace(-1.0, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape).to(out)
    (out * w).sum().backward()
    return v.grad


@pytest.mark.parametrize("batch", [(), (2, 3)], ids=["unbatched", "batched"])
def test_kernel_gradients_match_reference(kernel_device, batch):
    a = csr_from_lengths([3, 0, 40, 2, 1, 4], 48, gen(9), batch=batch, device=kernel_device)
    dv = _grad(a, "triton", torch.float32, 0.8)
    dv64 = _grad(a.to("cpu"), "reference", torch.float64, 0.8)
    assert dv.shape == a.values.shape
    assert_close(dv, dv64, torch.float32, 40)


def test_kernel_gradient_with_zero_rows(kernel_device):
    """All −inf rows: output 0 and gradient 0, not NaN."""
    a = csr_from_lengths([3, 2], 4, gen(10), device=kernel_device)
    v = a.values.clone()
    v[:3] = -INF
    a = a.with_values(v)
    dv = _grad(a, "triton", torch.float32, 1.0)
    assert not dv.isnan().any() and bool((dv[:3] == 0).all())


# -- errors ------------------------------------------------------------------------------------------
def _a():
    return csr_from_lengths([1, 2, 0, 1], 5, gen(11))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda a: sgk.sparse_softmax(a.to_dense()),
            TypeError,
            r"sparse_softmax\(\): a must be an sgk\.CSRMatrix, got Tensor \(build one with",
        ),
        (lambda a: sgk.sparse_softmax("a"), TypeError, r"sparse_softmax\(\): a must be an sgk\.CSRMatrix, got str"),
        (
            lambda a: sgk.sparse_softmax(a, scale=torch.tensor(2.0)),
            TypeError,
            r"sparse_softmax\(\): scale must be a number, got Tensor",
        ),
        (lambda a: sgk.sparse_softmax(a, method="triton2"), ValueError, r"sparse_softmax\(\): method must be one of"),
    ],
    ids=["dense-a", "str-a", "tensor-scale", "method"],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_a())


def test_triton_refuses_float64(kernel_device):
    a = _a().to(kernel_device, torch.float64)
    with pytest.raises(TypeError, match=r"sparse_softmax\(\): the Triton kernels take float32, float16 or bfloat16"):
        sgk.sparse_softmax(a, method="triton")


# -- registered ops --------------------------------------------------------------------------------
def test_registered_ops_exist():
    assert hasattr(torch.ops.sgk, "sparse_softmax") and hasattr(torch.ops.sgk, "sparse_softmax_backward")
    a = csr_from_lengths([1, 3, 0], 4, gen(12), dtype=torch.float64)
    op = torch.ops.sgk.sparse_softmax.default
    out = op(*op_args(op, a, x=a.values[None], scale=2.0, backend="reference"))
    torch.testing.assert_close(out[0], dense_softmax(a, 2.0))


# Inputs do not require grad: autograd lives in sgk.ops (see test_spmm.py).
@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_opcheck(kernel_device, backend):
    device = kernel_device if backend == "triton" else "cpu"
    dtype = torch.float32 if backend == "triton" else torch.float64
    g = gen(13)
    a = csr_from_lengths([2, 0, 3, 1], 5, g, device=device)
    x = randn(2, a.nnz, g=g, dtype=dtype, device=device)
    gr = randn(2, a.nnz, g=g, dtype=dtype, device=device)
    y = reference.softmax_coo(a.row_indices, x, 4, 0.5)
    fwd, bwd = torch.ops.sgk.sparse_softmax.default, torch.ops.sgk.sparse_softmax_backward.default
    torch.library.opcheck(fwd, op_args(fwd, a, x=x, scale=0.5, backend=backend))
    torch.library.opcheck(bwd, op_args(bwd, a, y=y, g=gr, scale=0.5, backend=backend))


# -- GPU (H100): moderately large problems ------------------------------------------------------------
GPU_DTYPES = KERNEL_DTYPES


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("distribution", ["uniform", "skewed"])
def test_gpu_large(dtype, distribution):
    g = gen(100)
    a = sgk.CSRMatrix.random(2048, 1024, 0.9, distribution=distribution, row_cv=0.8, dtype=dtype, generator=g)
    a = a.to("cuda")
    _check(sgk.sparse_softmax(a, scale=1 / math.sqrt(64)), a, 1 / math.sqrt(64), dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
def test_gpu_batched_heads_and_gradients(dtype):
    a = sgk.CSRMatrix.random(512, 512, 0.9, batch_shape=(8,), dtype=dtype, generator=gen(101)).to("cuda")
    _check(sgk.sparse_softmax(a, scale=0.125), a, 0.125, dtype)
    dv = _grad(a, "triton", dtype, 0.125)
    dv64 = _grad(a.to(torch.float64), "reference", torch.float64, 0.125)
    assert_close(dv, dv64, dtype, a.topology.max_row_length)


@pytest.mark.gpu
def test_gpu_batch_offsets_beyond_int32():
    """batch·nnz > 2**31: the batch offset of the last entries overflows int32."""
    m, length = 64, 8192
    batch = 2**31 // (m * length) + 4
    a = csr_from_lengths([length] * m, length, gen(102), dtype=torch.float16, cols_from_end=True).to("cuda")
    v = torch.randn(batch, a.nnz, dtype=torch.float16, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    out = sgk.sparse_softmax(a.with_values(v)).values
    for i in (0, batch - 1):
        expected = torch.softmax(v[i].double().reshape(m, length), -1).reshape(-1)
        assert_close(out[i], expected, torch.float16, length)
    del v, out
    torch.cuda.empty_cache()


@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (4, 2), (8, 1)], ids=lambda s: f"rows{s[0]}_w{s[1]}")
@pytest.mark.parametrize("causal", [False, True])
def test_kernel_rows_per_program(kernel_device, shape, causal):
    """Several rows per program (the tuner's other candidates), with m not a multiple of them, an
    empty row, causal masking; forward and backward against the float64 oracle."""
    from sgk.kernels import softmax as ksoftmax

    a = _causal_pattern(kernel_device, batch=(2,))  # 6 rows (one empty), up to 45 nonzeros
    topo = a.topology
    x = a.values
    y = ksoftmax.softmax(topo.row_offsets, topo.column_indices, topo.row_swizzle, x, 0.5, None, causal, shape=shape)
    expected = dense_softmax(a, 0.5, causal)
    assert_close(y, expected, torch.float32, 45)
    g = randn(*x.shape, g=gen(13)).to(kernel_device)
    dx = ksoftmax.softmax_backward(topo.row_offsets, topo.row_swizzle, y, g, 0.5, None, shape=shape)
    yd = expected.to(torch.float64)
    gd = g.double().cpu()
    rows = a.row_indices.long().cpu()
    dot = torch.zeros(2, 6, dtype=torch.float64).index_add(-1, rows, yd * gd)
    assert_close(dx, 0.5 * yd * (gd - dot[..., rows]), torch.float32, 45)


def test_plan_fast_path(kernel_device, monkeypatch):
    """A repeated inference call with the same values layout, scale and causal flag takes the plan
    cached on the topology and computes the same as the full path; another scale, causal, batched
    values or a recorded autograd graph take the full path (the latter two making or not making
    plans of their own); a bad scale is still refused."""
    import importlib

    ops_softmax = importlib.import_module("sgk.ops.softmax")
    monkeypatch.setattr(ops_softmax, "select_backend", lambda op, method, t, shown=None: "triton")  # "auto" on the CPU
    g = gen(91)
    a = csr_from_lengths([5, 0, 9, 3, 12, 1], 12, g, dtype=torch.float16, device=kernel_device)
    first = sgk.sparse_softmax(a, scale=0.5)
    plans = a.topology._cache["softmax_plans"]
    assert len(plans) == 1
    calls = []
    (key, plan), = plans.items()
    plans[key] = lambda t_, v: calls.append(1) or plan(t_, v)
    again = sgk.sparse_softmax(a, scale=0.5)
    assert calls == [1] and torch.equal(first.values, again.values)
    _check(again, a, 0.5, dtype=torch.float16)
    _check(sgk.sparse_softmax(a, scale=0.25), a, 0.25, dtype=torch.float16)
    _check(sgk.sparse_softmax(a, scale=0.5, causal=True), a, 0.5, dtype=torch.float16, causal=True)
    batched = a.with_values(randn(2, a.nnz, g=g, dtype=torch.float16, device=kernel_device))
    _check(sgk.sparse_softmax(batched, scale=0.5), batched, 0.5, dtype=torch.float16)
    assert calls == [1] and len(plans) == 4
    w = a.with_values(a.values.clone().requires_grad_())
    sgk.sparse_softmax(w, scale=0.5).values.float().sum().backward()
    assert w.values.grad is not None and calls == [1] and len(plans) == 4
    with pytest.raises(TypeError, match="scale must be a number"):
        sgk.sparse_softmax(a, scale=[0.5])
