"""sgk.sddmm: the values of X·Yᵀ at a CSR pattern's nonzeros.

Oracle: dense float64 X·Yᵀ gathered at the pattern. Kernel tests run on CUDA, or on the CPU under
the Triton interpreter (tests/conftest.py), on small problems.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import sgk
from sgk.ops import reference
from sgk.testing import assert_close

from _helpers import KERNEL_DTYPES, bf16_slack, csr_from_lengths, gen, op_args, poison_kernel_outputs, randn

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    poison_kernel_outputs(monkeypatch)


def dense_sddmm(x, y, pattern: sgk.CSRMatrix):
    """float64 oracle: (X·Yᵀ)[..., row(e), col(e)], batch dimensions broadcast."""
    full = x.double().cpu() @ y.double().cpu().transpose(-1, -2)
    return full[..., pattern.row_indices.long().cpu(), pattern.column_indices.long().cpu()]


def _check(out, x, y, pattern, dtype=torch.float32):
    assert isinstance(out, sgk.CSRMatrix) and out.topology is pattern.topology
    expected = dense_sddmm(x, y, pattern)
    assert out.values.shape == expected.shape and out.dtype == x.dtype
    assert_close(out.values, expected, dtype, max(1, x.shape[-1]), slack=bf16_slack(dtype))


# -- reference path ---------------------------------------------------------------------------------
def test_reference_matches_dense_float64():
    g = gen(0)
    p = csr_from_lengths([3, 0, 5, 1, 0, 7], 10, g)
    x = randn(2, 6, 5, g=g, dtype=torch.float64)
    y = randn(10, 5, g=g, dtype=torch.float64)
    expected = dense_sddmm(x, y, p)
    for vals in (
        sgk.sddmm(x, y, p, method="reference").values,
        sgk.sddmm(x, y, p).values,  # auto on the CPU: reference
        reference.sddmm(x, y, p),
    ):
        assert vals.shape == (2, p.nnz) and vals.dtype == torch.float64
        torch.testing.assert_close(vals, expected, rtol=1e-13, atol=1e-13)


def test_pattern_values_are_ignored():
    """Only the topology is sampled: pattern dtype and batch play no part."""
    g = gen(1)
    p = csr_from_lengths([2, 1, 3], 4, g, batch=(5,), dtype=torch.float16)
    x, y = randn(3, 6, g=g), randn(4, 6, g=g)
    out = sgk.sddmm(x, y, p)
    assert out.dtype == torch.float32 and out.batch_shape == ()
    assert_close(out.values, dense_sddmm(x, y, p), torch.float32, 6)


# -- gradients (float64, reference path) ------------------------------------------------------------
def test_gradcheck_x_y():
    g = gen(2)
    p = csr_from_lengths([2, 0, 3, 1], 5, g)
    x = randn(4, 3, g=g, dtype=torch.float64).requires_grad_()
    y = randn(5, 3, g=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: sgk.sddmm(x, y, p, method="reference").values, (x, y))


def test_gradcheck_batched_broadcast():
    g = gen(3)
    p = csr_from_lengths([2, 1, 3], 4, g)
    x = randn(2, 1, 3, 2, g=g, dtype=torch.float64).requires_grad_()
    y = randn(3, 4, 2, g=g, dtype=torch.float64).requires_grad_()
    fn = lambda x, y: sgk.sddmm(x, y, p, method="reference").values  # noqa: E731
    assert fn(x, y).shape == (2, 3, p.nnz)
    assert torch.autograd.gradcheck(fn, (x, y))


# -- Triton kernels vs the float64 oracle ------------------------------------------------------------
@pytest.mark.parametrize("dtype", KERNEL_DTYPES)
def test_kernel_matches_reference(kernel_device, dtype):
    g = gen(4)
    p = sgk.CSRMatrix.random(24, 40, 0.75, distribution="skewed", row_cv=0.6, generator=g).to(kernel_device)
    x = randn(24, 20, g=g, dtype=dtype, device=kernel_device)
    y = randn(40, 20, g=g, dtype=dtype, device=kernel_device)
    _check(sgk.sddmm(x, y, p, method="triton"), x, y, p, dtype)


# (row lengths, k, d): each changes which lanes, chunks or programs are masked.
EDGE_CASES = {
    "empty-rows": ([3, 0, 2, 0, 0, 4, 1], 12, 12),
    "first-and-last-row-empty": ([0, 2, 5, 1, 0], 9, 8),
    "one-row-holds-all": ([0, 0, 40, 0, 0, 0], 48, 16),  # several BLOCK_NZ chunks
    "nnz-0": ([0, 0, 0], 5, 7),
    "m-1": ([5], 8, 8),
    "d-1": ([2, 3, 0, 1], 6, 1),
    "odd-d": ([4, 1, 6, 2, 3], 10, 13),
    "d-beyond-one-block": ([2, 0, 3], 5, 130),  # two BLOCK_D chunks, the last partial
    "k-1": ([1, 0, 1], 1, 5),
    "unaligned-row-starts": ([1, 3, 5, 7, 3, 1, 2], 16, 16),
    "m-0": ([], 4, 3),
    "d-0": ([2, 1], 4, 0),
}


@pytest.mark.parametrize("case", list(EDGE_CASES), ids=list(EDGE_CASES))
def test_kernel_edge_cases(kernel_device, case):
    lengths, k, d = EDGE_CASES[case]
    g = gen(5)
    p = csr_from_lengths(lengths, k, g, device=kernel_device)
    x = randn(len(lengths), d, g=g, device=kernel_device)
    y = randn(k, d, g=g, device=kernel_device)
    _check(sgk.sddmm(x, y, p, method="triton"), x, y, p)


@pytest.mark.parametrize("seed", range(4))
def test_kernel_random_shapes(kernel_device, seed):
    """Shapes, sparsity and skew drawn from the seed: masks land in other places."""
    g = gen(1000 + seed)
    m, k, d = (int(torch.randint(1, hi, (1,), generator=g)) for hi in (40, 48, 40))
    sparsity = float(torch.empty(1).uniform_(0.3, 0.95, generator=g))
    dist = "skewed" if seed % 2 else "uniform"
    p = sgk.CSRMatrix.random(m, k, sparsity, distribution=dist, row_cv=0.9, generator=g).to(kernel_device)
    x, y = randn(m, d, g=g, device=kernel_device), randn(k, d, g=g, device=kernel_device)
    _check(sgk.sddmm(x, y, p, method="triton"), x, y, p)


@pytest.mark.parametrize("method", ["reference", "triton"])
@pytest.mark.parametrize("lengths, d", [([], 4), ([2, 1], 0)], ids=["m-0-batched", "d-0-batched"])
def test_empty_batched(kernel_device, method, lengths, d):
    """A batch with an empty tail (m or d = 0): flattening the batch must not reshape(-1, 0)."""
    g = gen(61)
    p = csr_from_lengths(lengths, 5, g, device=kernel_device)
    x = randn(2, len(lengths), d, g=g, device=kernel_device)
    y = randn(5, d, g=g, device=kernel_device)
    _check(sgk.sddmm(x, y, p, method=method), x, y, p)


@pytest.mark.parametrize("block_nz, block_d", [(16, 16), (32, 64)])
def test_launcher_tiles(kernel_device, block_nz, block_d):
    """Explicit configs: rows longer than BLOCK_NZ and d not a multiple of BLOCK_D."""
    from sgk.kernels import sddmm as kmod

    g = gen(6)
    p = csr_from_lengths([0, 19, 3, 33, 0, 7, 1], 40, g, device=kernel_device)
    x = randn(7, 40, g=g, device=kernel_device)
    y = randn(40, 40, g=g, device=kernel_device)
    cfg = dataclasses.replace(kmod.default_config(40, p.nnz / 7), block_nz=block_nz, block_d=block_d)
    out = kmod.sddmm(p.row_offsets, p.column_indices, p.row_swizzle, x[None], y[None], config=cfg)
    assert out.shape == (1, p.nnz)
    assert_close(out[0], dense_sddmm(x, y, p), torch.float32, 40)


def test_every_candidate_config(kernel_device):
    """Each tile shape the tuner can choose: rows longer than BLOCK_NZ, d not a multiple of BLOCK_D."""
    from sgk.kernels import sddmm as kmod

    if hasattr(kmod, "candidates"):
        configs = []
        for d in (64, 1024):
            for dtype in (torch.float32, torch.float16):
                configs += [c for c in kmod.candidates(d, 8.0, dtype, dense=True) if c not in configs]
    else:
        configs = [kmod.default_config(64, 8.0)]
    g = gen(70)
    p = csr_from_lengths([0, 150, 3, 33, 0, 7, 129], 160, g, device=kernel_device)
    x = randn(7, 40, g=g, device=kernel_device)
    y = randn(160, 40, g=g, device=kernel_device)
    expected = dense_sddmm(x, y, p)
    for cfg in configs:
        out = kmod.sddmm(p.row_offsets, p.column_indices, p.row_swizzle, x[None], y[None], config=cfg,
                         row_indices=p.row_indices)
        assert_close(out[0], expected, torch.float32, 40, msg=f"config {cfg}:")
    assert kmod.DENSE in configs


def test_dense_candidate_batched_and_capped(kernel_device):
    """The cuBLAS-then-gather configuration: broadcast batch, and offered only under the memory cap."""
    from sgk.kernels import sddmm as kmod

    g = gen(71)
    p = csr_from_lengths([3, 0, 6, 2, 5], 14, g, device=kernel_device)
    x = randn(3, 5, 9, g=g, device=kernel_device)
    y = randn(14, 9, g=g, device=kernel_device)
    out = kmod.sddmm(p.row_offsets, p.column_indices, p.row_swizzle, x, y[None], config=kmod.DENSE, row_indices=p.row_indices)
    assert_close(out, dense_sddmm(x, y, p), torch.float32, 9)
    out1 = kmod.sddmm(p.row_offsets, p.column_indices, p.row_swizzle, x[1], y, config=kmod.DENSE, row_indices=p.row_indices)
    assert out1.shape == (p.nnz,)
    assert_close(out1, dense_sddmm(x[1], y, p), torch.float32, 9)
    assert kmod.DENSE in kmod.candidates(2048, 100.0, dense=True)
    assert kmod.DENSE not in kmod.candidates(2048, 100.0, dense=False)
    with pytest.raises(ValueError, match="needs the pattern's row indices"):
        kmod.sddmm(p.row_offsets, p.column_indices, p.row_swizzle, x, y[None], config=kmod.DENSE)


@pytest.mark.parametrize("kind", ["transposed", "sliced"])
def test_kernel_noncontiguous_inputs(kernel_device, kind):
    g = gen(7)
    p = csr_from_lengths([3, 0, 6, 2, 5], 14, g, device=kernel_device)
    if kind == "transposed":
        x = randn(11, 5, g=g, device=kernel_device).t()
        y = randn(11, 14, g=g, device=kernel_device).t()
    else:
        x = randn(10, 2 * 11, g=g, device=kernel_device)[::2, ::2]
        y = randn(14, 11 + 3, g=g, device=kernel_device)[:, 2 : 11 + 2]
    assert not x.is_contiguous() and not y.is_contiguous()
    _check(sgk.sddmm(x, y, p, method="triton"), x, y, p)


# (x batch, y batch)
BATCH_CASES = {
    "x-batched": ((3,), ()),
    "y-batched": ((), (3,)),
    "both-batched": ((3,), (3,)),
    "multi-dim-broadcast": ((2, 3), (3,)),
    "outer-broadcast": ((2, 1), (1, 3)),
}


@pytest.mark.parametrize("case", list(BATCH_CASES), ids=list(BATCH_CASES))
def test_kernel_batched(kernel_device, case):
    xb, yb = BATCH_CASES[case]
    g = gen(8)
    p = csr_from_lengths([2, 0, 4, 1, 3], 8, g, device=kernel_device)
    x = randn(*xb, 5, 6, g=g, device=kernel_device)
    y = randn(*yb, 8, 6, g=g, device=kernel_device)
    out = sgk.sddmm(x, y, p, method="triton")
    assert out.batch_shape == torch.broadcast_shapes(xb, yb)
    _check(out, x, y, p)


# -- autograd through the kernels --------------------------------------------------------------------
def _grads(x, y, p, method, dtype):
    xx = x.detach().to(dtype).requires_grad_()
    yy = y.detach().to(dtype).requires_grad_()
    out = sgk.sddmm(xx, yy, p, method=method)
    _check(out, xx, yy, p, dtype)  # the forward of the autograd path
    vals = out.values
    w = torch.linspace(-1.0, 1.5, vals.numel(), dtype=torch.float64).reshape(vals.shape).to(vals)
    (vals * w).sum().backward()
    return xx.grad, yy.grad


@pytest.mark.parametrize("xb, yb", [((), ()), ((2, 1), (3,))], ids=["unbatched", "broadcast-batches"])
def test_kernel_gradients_match_reference(kernel_device, xb, yb):
    g = gen(9)
    p = csr_from_lengths([3, 0, 5, 2, 1, 4], 9, g, device=kernel_device)
    x = randn(*xb, 6, 7, g=g, device=kernel_device)
    y = randn(*yb, 9, 7, g=g, device=kernel_device)
    dx, dy = _grads(x, y, p, "triton", torch.float32)
    dx64, dy64 = _grads(x.cpu(), y.cpu(), p.to("cpu"), "reference", torch.float64)
    assert dx.shape == x.shape and dy.shape == y.shape
    red = 5 * 6  # a row (or column) of the pattern, times the batch summed over
    assert_close(dx, dx64, torch.float32, red)
    assert_close(dy, dy64, torch.float32, red)


# -- errors ------------------------------------------------------------------------------------------
def _p():
    return csr_from_lengths([1, 2, 0, 1], 5, gen(10))


X, Y = torch.ones(4, 3), torch.ones(5, 3)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda p: sgk.sddmm(X.long(), Y, p), TypeError, r"sddmm\(\): x must have dtype in"),
        (
            lambda p: sgk.sddmm(X, Y.half(), p),
            TypeError,
            r"sddmm\(\): x and y must have the same dtype, got float32 and float16",
        ),
        (lambda p: sgk.sddmm(torch.ones(3, 3), Y, p), ValueError, r"sddmm\(\): pattern is 4×5 so x must be \(\*batch, 4, d\)"),
        (lambda p: sgk.sddmm(X, torch.ones(6, 3), p), ValueError, r"sddmm\(\): pattern is 4×5 so y must be \(\*batch, 5, d\)"),
        (
            lambda p: sgk.sddmm(X, torch.ones(5, 2), p),
            ValueError,
            r"sddmm\(\): x and y must share the reduction dimension d, got x \(4, 3\) and y \(5, 2\)",
        ),
        (lambda p: sgk.sddmm(torch.ones(4), Y, p), ValueError, r"sddmm\(\): x must have at least 2 dimensions"),
        (
            lambda p: sgk.sddmm(X, Y, p.to_dense()),
            TypeError,
            r"sddmm\(\): pattern must be an sgk\.CSRMatrix, got Tensor \(build one with",
        ),
        (
            lambda p: sgk.sddmm(torch.ones(2, 4, 3), torch.ones(3, 5, 3), p),
            ValueError,
            r"sddmm\(\): batch dimensions do not broadcast: x batch shape \(2,\), y batch shape \(3,\)",
        ),
        (lambda p: sgk.sddmm(X, Y, p, method="fast"), ValueError, r"sddmm\(\): method must be one of"),
        (
            lambda p: sgk.sddmm(X, Y.to("meta"), p),
            ValueError,
            r"sddmm\(\): all inputs must be on one device, but x is on cpu and y is on meta",
        ),
    ],
    ids=["int-x", "dtype-mismatch", "x-rows", "y-rows", "d-mismatch", "x-1d", "dense-pattern", "batch", "method", "device"],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_p())


def test_triton_refuses_float64(kernel_device):
    p = _p().to(kernel_device)
    x, y = X.double().to(kernel_device), Y.double().to(kernel_device)
    with pytest.raises(TypeError, match=r"sddmm\(\): the Triton kernels take float32, float16 or bfloat16"):
        sgk.sddmm(x, y, p, method="triton")


# -- registered op ---------------------------------------------------------------------------------
def _raw_args(p, x, y, backend):
    return op_args(torch.ops.sgk.sddmm.default, p, x=x, y=y, backend=backend)


def test_registered_op_exists():
    assert hasattr(torch.ops.sgk, "sddmm")
    g = gen(11)
    p = csr_from_lengths([1, 3, 0], 4, g)
    x, y = randn(1, 3, 2, g=g, dtype=torch.float64), randn(1, 4, 2, g=g, dtype=torch.float64)
    out = torch.ops.sgk.sddmm(*_raw_args(p, x, y, "reference"))
    torch.testing.assert_close(out[0], dense_sddmm(x[0], y[0], p))


# Inputs do not require grad: autograd lives in sgk.ops (see test_spmm.py).
@pytest.mark.parametrize("bx, by", [(1, 1), (3, 1), (1, 3)], ids=["plain", "batched-x", "batched-y"])
def test_opcheck_reference(bx, by):
    g = gen(12)
    p = csr_from_lengths([2, 0, 3, 1], 5, g)
    x, y = randn(bx, 4, 3, g=g, dtype=torch.float64), randn(by, 5, 3, g=g, dtype=torch.float64)
    torch.library.opcheck(torch.ops.sgk.sddmm.default, _raw_args(p, x, y, "reference"))


def test_opcheck_triton(kernel_device):
    g = gen(13)
    p = csr_from_lengths([2, 0, 3, 1], 5, g, device=kernel_device)
    x, y = randn(2, 4, 3, g=g, device=kernel_device), randn(1, 5, 3, g=g, device=kernel_device)
    torch.library.opcheck(torch.ops.sgk.sddmm.default, _raw_args(p, x, y, "triton"))


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_opcheck_unbatched(kernel_device, backend):
    """The registered op also takes unbatched x (m, d), y (k, d) and returns (nnz): the eager fast
    path makes no views. Includes a transposed (non-contiguous) y."""
    if backend == "reference" and kernel_device.type == "cuda":
        pytest.skip("the reference backend is checked on the CPU")
    g = gen(14)
    p = csr_from_lengths([2, 0, 3, 1], 5, g, device=kernel_device)
    x, y = randn(4, 3, g=g, device=kernel_device), randn(3, 5, g=g, device=kernel_device).t()
    args = _raw_args(p, x, y, backend)
    out = torch.ops.sgk.sddmm.default(*args)
    assert out.shape == (p.nnz,)
    assert_close(out, dense_sddmm(x, y, p), torch.float32, 3)
    torch.library.opcheck(torch.ops.sgk.sddmm.default, args)


# -- GPU (H100): moderately large problems ------------------------------------------------------------
GPU_DTYPES = KERNEL_DTYPES


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("d", [64, 256])
@pytest.mark.parametrize("distribution", ["uniform", "skewed"])
def test_gpu_large(dtype, d, distribution):
    g = gen(100)
    p = sgk.CSRMatrix.random(2048, 1024, 0.9, distribution=distribution, row_cv=0.8, generator=g).to("cuda")
    x = randn(2048, d, g=g, dtype=dtype, device="cuda")
    y = randn(1024, d, g=g, dtype=dtype, device="cuda")
    _check(sgk.sddmm(x, y, p), x, y, p, dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", GPU_DTYPES)
def test_gpu_batched_heads_and_gradients(dtype):
    g = gen(101)
    p = sgk.CSRMatrix.random(512, 512, 0.9, generator=g).to("cuda")
    x = randn(8, 512, 64, g=g, dtype=dtype, device="cuda")
    y = randn(8, 512, 64, g=g, dtype=dtype, device="cuda")
    _check(sgk.sddmm(x, y, p), x, y, p, dtype)
    dx, dy = _grads(x, y, p, "triton", dtype)
    dx64, dy64 = _grads(x, y, p, "reference", torch.float64)
    red = p.topology.max_row_length
    assert_close(dx, dx64, dtype, red)
    assert_close(dy, dy64, dtype, int(torch.bincount(p.column_indices.long()).max()))


@pytest.mark.gpu
def test_gpu_offsets_beyond_int32():
    """Y has k·d > 2**31 elements and the pattern's columns sit near the end of k."""
    k, d, m = 2**21 + 64, 1024, 64
    assert k * d > 2**31
    dtype = torch.float16
    g = gen(102)
    p = csr_from_lengths([4] * m, k, g, cols_from_end=True).to("cuda")
    x = randn(m, d, g=g, dtype=dtype, device="cuda")
    y = torch.randn(k, d, dtype=dtype, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    out = sgk.sddmm(x, y, p)
    rows, cols = p.row_indices.long(), p.column_indices.long()
    expected = (x.double()[rows] * y[cols].double()).sum(-1)
    assert_close(out.values, expected, dtype, d)
    del y
    torch.cuda.empty_cache()


def test_plan_fast_path(kernel_device, monkeypatch):
    """A repeated inference call with the same operand layout takes the plan cached on the
    topology (no checks, no op layer) and computes the same as the full path, batched too; another
    layout, a recorded autograd graph, another method or a BSR pattern take the full path, and the
    checks still catch a layout never seen."""
    import importlib

    ops_sddmm = importlib.import_module("sgk.ops.sddmm")
    monkeypatch.setattr(ops_sddmm, "select_backend", lambda op, method, t, shown=None: "triton")  # "auto" on the CPU
    g = gen(90)
    p = csr_from_lengths([4, 0, 7, 2, 9, 1], 12, g, dtype=torch.float16, device=kernel_device)
    x = randn(6, 16, g=g, dtype=torch.float16, device=kernel_device)
    y = randn(12, 16, g=g, dtype=torch.float16, device=kernel_device)
    first = sgk.sddmm(x, y, p)
    plans = p.topology._cache["sddmm_plans"]
    assert len(plans) == 1
    calls = []
    (key, plan), = plans.items()
    plans[key] = lambda t_, x_, y_: calls.append(1) or plan(t_, x_, y_)
    again = sgk.sddmm(x, y, p)
    assert calls == [1] and torch.equal(first.values, again.values)
    _check(again, x, y, p, dtype=torch.float16)
    xb = randn(3, 6, 16, g=g, dtype=torch.float16, device=kernel_device)  # batched: a second plan
    _check(sgk.sddmm(xb, y, p), xb, y, p, dtype=torch.float16)
    _check(sgk.sddmm(xb, y, p), xb, y, p, dtype=torch.float16)
    assert len(plans) == 2
    xg = x.clone().requires_grad_()
    out = sgk.sddmm(xg, y, p)  # autograd: the full path, with gradients
    out.values.float().sum().backward()
    assert xg.grad is not None and calls == [1]
    _check(sgk.sddmm(x, y, p, method="reference"), x, y, p, dtype=torch.float16)
    assert calls == [1]
    with pytest.raises(ValueError, match="must share the reduction dimension"):
        sgk.sddmm(x, randn(12, 8, g=g, dtype=torch.float16, device=kernel_device), p)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the interpreter's softmax of an empty row
def test_plans_do_not_keep_the_topology_alive(kernel_device, monkeypatch):
    """A plan lives in its topology's cache and must not refer back to the topology: with the
    cycle collector off, dropping the last matrix frees the topology (and its index tensors) at
    once, after sddmm, sparse_softmax and spmm plans were made."""
    import gc
    import importlib
    import weakref

    for name in ("sgk.ops.sddmm", "sgk.ops.softmax", "sgk.ops.spmm"):
        monkeypatch.setattr(importlib.import_module(name), "select_backend", lambda op, method, t, shown=None: "triton")
    g = gen(96)
    p = csr_from_lengths([3, 0, 5, 2], 8, g, dtype=torch.float16, device=kernel_device)
    x = randn(4, 8, g=g, dtype=torch.float16, device=kernel_device)
    y = randn(8, 8, g=g, dtype=torch.float16, device=kernel_device)
    scores = sgk.sddmm(x, y, p)
    probs = sgk.sparse_softmax(scores, scale=0.5)
    sgk.spmm(probs, y)
    topo = p.topology
    assert {"sddmm_plans", "softmax_plans", "spmm_plans"} <= set(topo._cache)
    ref = weakref.ref(topo)
    gc.disable()
    try:
        del p, scores, probs, topo
        assert ref() is None
    finally:
        gc.enable()
