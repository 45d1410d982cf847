"""Block-sparse matrices and ops: BSRMatrix, bsr_spmm (A·B), bsr_dsmm (X·A), bsr_sddmm.

Oracle: dense float64 torch math on the same (rounded) inputs. Kernel tests run on CUDA, or on the
CPU under the Triton interpreter, on small problems (block size 16 or 32).
"""
from __future__ import annotations

import pytest
import torch

import sgk
from sgk.testing import assert_close

from _helpers import bf16_slack, gen, poison_kernel_outputs, randn

pytestmark = [
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Sparse BSR tensor support is in beta:UserWarning"),
    pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning"),
]


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    poison_kernel_outputs(monkeypatch)


def _tol_dtype(dtype: torch.dtype, device) -> torch.dtype:
    """fp32 runs on TF32 tensor cores on the GPU (10-bit mantissa inputs): judge it like fp16 there."""
    if dtype == torch.float32 and torch.device(device).type == "cuda":
        return torch.float16
    return dtype


def _bsr(m, k, bs, sparsity, g, *, batch=(), dtype=torch.float32, device="cpu", empty_rows=()):
    a = sgk.BSRMatrix.random(m, k, bs, sparsity, generator=g, batch_shape=batch, dtype=dtype)
    if empty_rows:
        mask = a.block_mask()
        mask[list(empty_rows)] = False
        values = randn(*batch, int(mask.sum()), bs, bs, g=g, dtype=dtype)
        a = sgk.BSRMatrix.from_block_mask(mask, values, bs)
    return a.to(device)


# -- BSRMatrix ----------------------------------------------------------------------------------------
def test_from_dense_roundtrip_and_mask():
    g = gen(0)
    dense = randn(64, 96, g=g)
    mask = torch.rand(4, 6, generator=g) < 0.5
    mask[0, 0] = True
    a = sgk.BSRMatrix.from_dense(dense, 16, mask=mask)
    a.validate()
    assert a.shape == (64, 96) and a.block_size == 16 and a.nnz_blocks == int(mask.sum())
    expected = dense * mask.repeat_interleave(16, 0).repeat_interleave(16, 1)
    torch.testing.assert_close(a.to_dense(), expected)
    assert torch.equal(a.block_mask(), mask)


def test_from_dense_magnitude_pruning_keeps_largest_blocks():
    g = gen(1)
    dense = randn(64, 64, g=g) * 0.01
    dense[16:32, 32:48] = 5.0  # the one big block
    a = sgk.BSRMatrix.from_dense(dense, 16, sparsity=15 / 16)
    assert a.nnz_blocks == 1
    assert a.block_mask()[1, 2]
    b = sgk.BSRMatrix.from_dense(torch.zeros(32, 32).index_fill_(0, torch.tensor([3]), 1.0), 16)
    assert b.nnz_blocks == 2  # every block with a nonzero


def test_random_sparsity_and_batch():
    a = sgk.BSRMatrix.random(128, 256, 32, 0.75, generator=gen(2), batch_shape=(3,))
    assert a.nnz_blocks == 8 and a.values.shape == (3, 8, 32, 32) and a.batch_shape == (3,)
    assert a.sparsity == pytest.approx(0.75)
    assert a.to_dense().shape == (3, 128, 256)


def test_transpose_matches_dense_and_is_cached():
    a = _bsr(64, 96, 16, 0.5, gen(3), batch=(2,))
    at = a.t()
    torch.testing.assert_close(at.to_dense(), a.to_dense().transpose(-1, -2))
    assert at.shape == (96, 64)
    assert a.t().topology is at.topology  # the transposed block pattern is computed once


def test_torch_interop():
    a = _bsr(64, 32, 16, 0.5, gen(4))
    t = a.to_torch()
    assert t.layout == torch.sparse_bsr
    torch.testing.assert_close(t.to_dense(), a.to_dense())
    back = sgk.BSRMatrix.from_torch(t)
    torch.testing.assert_close(back.to_dense(), a.to_dense())


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (dict(shape=(64, 60), block_size=16), ValueError, "multiple of block_size"),
        (dict(shape=(64, 64), block_size=24), ValueError, "block_size must be one of"),
        (dict(shape=(64, 64), block_size=16, values_shape=(3, 16, 8)), ValueError, "values must have shape"),
        (dict(shape=(64, 64), block_size=16, int_values=True), TypeError, "values must be a floating"),
        (dict(shape=(64.5, 64), block_size=16), ValueError, r"shape must be \(m, k\) with integers"),
        (dict(shape=(64, 64), block_size=16.0), ValueError, r"block_size must be one of the integers"),
    ],
    ids=["shape-not-multiple", "bad-block-size", "values-shape", "int-values", "float-shape", "float-block-size"],
)
def test_constructor_errors(kwargs, exc, text):
    offsets = torch.tensor([0, 1, 2, 3, 3])
    cols = torch.tensor([0, 1, 2])
    shape_v = kwargs.get("values_shape", (3, 16, 16))
    values = torch.ones(shape_v, dtype=torch.int32) if kwargs.get("int_values") else torch.ones(shape_v)
    with pytest.raises(exc, match=text):
        sgk.BSRMatrix(offsets, cols, values, kwargs["shape"], kwargs["block_size"])


def test_validate_catches_unsorted_blocks():
    a = sgk.BSRMatrix(torch.tensor([0, 2, 2]), torch.tensor([1, 0]), torch.ones(2, 16, 16), (32, 32), 16)
    with pytest.raises(ValueError, match="strictly increasing"):
        a.validate()


# -- ops: reference path (float64) and gradients ------------------------------------------------------
def test_reference_ops_match_dense_float64():
    g = gen(5)
    a = _bsr(64, 96, 16, 0.5, g, batch=(2,), dtype=torch.float64, empty_rows=(1,))
    b = randn(96, 24, g=g, dtype=torch.float64)
    x = randn(2, 10, 64, g=g, dtype=torch.float64)
    dense = a.to_dense()
    torch.testing.assert_close(sgk.bsr_spmm(a, b), dense @ b)
    torch.testing.assert_close(sgk.bsr_dsmm(x, a), x @ dense)
    xs, ys = randn(64, 7, g=g, dtype=torch.float64), randn(96, 7, g=g, dtype=torch.float64)
    s = sgk.bsr_sddmm(xs, ys, a)
    mask = a.block_mask().repeat_interleave(16, 0).repeat_interleave(16, 1)
    torch.testing.assert_close(s.to_dense(), (xs @ ys.T) * mask)


def test_gradcheck_float64():
    g = gen(6)
    a = _bsr(32, 48, 16, 0.5, g, dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    b = randn(48, 5, g=g, dtype=torch.float64).requires_grad_()
    x = randn(3, 32, g=g, dtype=torch.float64).requires_grad_()
    xs = randn(32, 4, g=g, dtype=torch.float64).requires_grad_()
    ys = randn(48, 4, g=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda v, b: sgk.bsr_spmm(a.with_values(v), b), (v, b))
    assert torch.autograd.gradcheck(lambda x, v: sgk.bsr_dsmm(x, a.with_values(v)), (x, v))
    assert torch.autograd.gradcheck(lambda xs, ys: sgk.bsr_sddmm(xs, ys, a).values, (xs, ys))


def test_from_dense_and_block_mask_edges():
    """An empty dense matrix (m or k = 0, with or without a batch) gives an empty BSRMatrix by every
    way of choosing blocks; values that are not a tensor are a TypeError naming them."""
    for x in (torch.randn(0, 16), torch.randn(16, 0), torch.randn(3, 0, 32)):
        for kw in ({}, {"sparsity": 0.5}):
            a = sgk.BSRMatrix.from_dense(x, 16, **kw)
            assert a.shape == tuple(x.shape[-2:]) and a.nnz_blocks == 0 and a.to_dense().shape == x.shape
    with pytest.raises(TypeError, match=r"from_block_mask\(\): values must be a tensor of shape \(\*batch, nnz_blocks, 16, 16\), got list"):
        sgk.BSRMatrix.from_block_mask(torch.ones(1, 1, dtype=torch.bool), [1.0], 16)


def test_op_errors():
    g = gen(7)
    a = _bsr(32, 48, 16, 0.5, g)
    with pytest.raises(ValueError, match=r"bsr_spmm\(\): a is 32×48 but b has 40 rows"):
        sgk.bsr_spmm(a, torch.randn(40, 4))
    with pytest.raises(TypeError, match=r"bsr_spmm\(\): a must be an sgk.BSRMatrix"):
        sgk.bsr_spmm(torch.randn(32, 48), torch.randn(48, 4))
    with pytest.raises(TypeError, match=r"bsr_dsmm\(\): x and a must have the same dtype"):
        sgk.bsr_dsmm(torch.randn(4, 32, dtype=torch.float64), a)
    with pytest.raises(ValueError, match=r"bsr_dsmm\(\): a is 32×48 so x must be"):
        sgk.bsr_dsmm(torch.randn(4, 48), a)
    with pytest.raises(ValueError, match=r"bsr_sddmm\(\): x and y must share d"):
        sgk.bsr_sddmm(torch.randn(32, 4), torch.randn(48, 5), a)
    with pytest.raises(ValueError, match=r"bsr_spmm\(\): batch dimensions do not broadcast"):
        sgk.bsr_spmm(_bsr(32, 48, 16, 0.5, g, batch=(2,)), torch.randn(3, 48, 4))


# -- kernels (CUDA, or the CPU under the Triton interpreter) ------------------------------------------
DTYPES = [torch.float32, torch.float16, torch.bfloat16]  # bf16 under the interpreter: widened to fp32 (kernels._common.UPCAST)


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("bs, n", [(16, 40), (32, 64)], ids=["bs16-n40", "bs32-n64"])
def test_kernel_spmm_dsmm(kernel_device, dtype, bs, n):
    """A·B and X·A: an empty block row, N with and without a partial column tile, batched values
    against an unbatched operand."""
    g = gen(8)
    a = _bsr(4 * bs, 3 * bs, bs, 0.5, g, batch=(2,), dtype=dtype, device=kernel_device, empty_rows=(2,))
    b = randn(3 * bs, n, g=g, dtype=dtype, device=kernel_device)
    x = randn(n, 4 * bs, g=g, dtype=dtype, device=kernel_device)
    dense = a.to_dense().double()
    tol = _tol_dtype(dtype, kernel_device)
    c = sgk.bsr_spmm(a, b, method="triton")
    assert c.shape == (2, 4 * bs, n) and c.dtype == dtype
    assert_close(c, dense @ b.double(), tol, 3 * bs, slack=bf16_slack(dtype))
    y = sgk.bsr_dsmm(x, a, method="triton")
    assert y.shape == (2, n, 3 * bs) and y.is_contiguous()
    assert_close(y, x.double() @ dense, tol, 4 * bs, slack=bf16_slack(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("d", [24, 64])
def test_kernel_sddmm(kernel_device, dtype, d):
    g = gen(9)
    a = _bsr(64, 96, 16, 0.5, g, dtype=dtype, device=kernel_device)
    x = randn(2, 64, d, g=g, dtype=dtype, device=kernel_device)
    y = randn(96, d, g=g, dtype=dtype, device=kernel_device)
    s = sgk.bsr_sddmm(x, y, a, method="triton")
    assert s.values.shape == (2, a.nnz_blocks, 16, 16)
    expected = sgk.BSRMatrix.from_dense((x.double() @ y.double().T), 16, mask=a.block_mask())
    assert_close(s.values, expected.values, _tol_dtype(dtype, kernel_device), d, slack=bf16_slack(dtype))


def test_kernel_noncontiguous_and_empty(kernel_device):
    g = gen(10)
    a = _bsr(32, 48, 16, 0.5, g, device=kernel_device)
    b = randn(40, 48, g=g, device=kernel_device).t()  # (48, 40), transposed strides
    assert_close(sgk.bsr_spmm(a, b, method="triton"), a.to_dense().double() @ b.double(), _tol_dtype(torch.float32, kernel_device), 48)
    empty = sgk.BSRMatrix.from_block_mask(torch.zeros(2, 3, dtype=torch.bool), torch.zeros(0, 16, 16), 16).to(kernel_device)
    c = sgk.bsr_spmm(empty, randn(48, 8, g=g, device=kernel_device), method="triton")
    assert torch.equal(c, torch.zeros_like(c))
    s = sgk.bsr_sddmm(randn(32, 8, g=g, device=kernel_device), randn(48, 8, g=g, device=kernel_device), empty, method="triton")
    assert s.values.shape == (0, 16, 16)


def test_kernel_gradients_match_reference(kernel_device):
    """Every backward product through the kernels (A·B, X·A, SDDMM) against the reference path."""
    g = gen(11)
    a = _bsr(32, 48, 16, 0.5, g, device=kernel_device)
    b = randn(48, 20, g=g, device=kernel_device)
    x = randn(20, 32, g=g, device=kernel_device)
    xs, ys = randn(32, 8, g=g, device=kernel_device), randn(48, 8, g=g, device=kernel_device)
    tol = _tol_dtype(torch.float32, kernel_device)

    def grads(method):
        v = a.values.detach().clone().requires_grad_()
        leaves = [t.detach().clone().requires_grad_() for t in (b, x, xs, ys)]
        bb, xx, xxs, yys = leaves
        out = (
            sgk.bsr_spmm(a.with_values(v), bb, method=method).square().sum()
            + sgk.bsr_dsmm(xx, a.with_values(v), method=method).square().sum()
            + sgk.bsr_sddmm(xxs, yys, a, method=method).values.square().sum()
        )
        out.backward()
        return [v.grad] + [t.grad for t in leaves]

    for got, want in zip(grads("triton"), grads("reference")):
        assert_close(got, want.double(), tol, 64, slack=4.0)


def test_spmm_and_sddmm_accept_bsr(kernel_device):
    """sgk.spmm / sgk.sddmm route a BSRMatrix to the block-sparse path."""
    g = gen(12)
    a = _bsr(32, 48, 16, 0.5, g, device=kernel_device)
    b = randn(48, 16, g=g, device=kernel_device)
    torch.testing.assert_close(sgk.spmm(a, b), sgk.bsr_spmm(a, b))
    x, y = randn(32, 8, g=g, device=kernel_device), randn(48, 8, g=g, device=kernel_device)
    torch.testing.assert_close(sgk.sddmm(x, y, a).values, sgk.bsr_sddmm(x, y, a).values)
    with pytest.raises(ValueError, match=r"spmm\(\): bias and activation are not supported for a BSRMatrix"):
        sgk.spmm(a, b, activation="relu")


# -- GPU only ------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("bs", [16, 32, 64, 128])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=["fp32", "fp16", "bf16"])
def test_gpu_block_sizes(bs, dtype):
    g = gen(13)
    m, k, n = 1024, 768, 384
    a = _bsr(m, k, bs, 0.8, g, dtype=dtype, device="cuda")
    b = randn(k, n, g=g, dtype=dtype, device="cuda")
    x = randn(n, m, g=g, dtype=dtype, device="cuda")
    dense = a.to_dense().double()
    tol = _tol_dtype(dtype, "cuda")
    assert_close(sgk.bsr_spmm(a, b), dense @ b.double(), tol, k)
    assert_close(sgk.bsr_dsmm(x, a), x.double() @ dense, tol, m)
    xs, ys = randn(m, 200, g=g, dtype=dtype, device="cuda"), randn(k, 200, g=g, dtype=dtype, device="cuda")
    expected = sgk.BSRMatrix.from_dense(xs.double() @ ys.double().T, bs, mask=a.block_mask())
    assert_close(sgk.bsr_sddmm(xs, ys, a).values, expected.values, tol, 200)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_gpu_gradients_every_candidate(dtype):
    """Every block-sparse configuration the tuner may pick, forward and both backward products,
    against float64 on a 64×64-block weight."""
    from sgk.kernels import bsr as kmod

    g = gen(14)
    a = _bsr(512, 384, 64, 0.7, g, dtype=dtype, device="cuda")
    b = randn(384, 320, g=g, dtype=dtype, device="cuda")
    dc = randn(512, 320, g=g, dtype=dtype, device="cuda")
    dense = a.to_dense().double()
    tol = _tol_dtype(dtype, "cuda")
    t_topo, perm = a.topology.transpose()
    t_topo.row_swizzle  # noqa: B018
    for cfg in kmod.spmm_candidates(64, 320, dtype):
        c = kmod.spmm(a.row_offsets, a.column_indices, a.topology.row_swizzle, None, a.values[None], b[None], 512, config=cfg)
        assert_close(c[0], dense @ b.double(), tol, 384, msg=f"fwd {cfg}:")
        ct = kmod.spmm(t_topo.row_offsets, t_topo.column_indices, t_topo.row_swizzle, perm, a.values[None], dc[None], 384,
                       config=cfg)
        assert_close(ct[0], dense.T @ dc.double(), tol, 512, msg=f"dgrad {cfg}:")
    expected = sgk.BSRMatrix.from_dense(dc.double() @ b.double().T, 64, mask=a.block_mask()).values
    for cfg in kmod.sddmm_candidates(64, 320, dtype):
        s = kmod.sddmm(a.topology.row_indices, a.column_indices, dc[None], b[None], 64, config=cfg)
        assert_close(s[0], expected, tol, 320, msg=f"wgrad {cfg}:")


# -- registered ops and torch.compile -------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("transpose, out_transposed", [(False, False), (True, True)], ids=["A·B", "X·A"])
def test_opcheck_bsr_spmm(kernel_device, backend, transpose, out_transposed):
    g = gen(15)
    a = _bsr(32, 48, 16, 0.5, g, device=kernel_device)
    a.topology.prepare(transpose=True)
    walk, perm = a.topology.transpose() if transpose else (a.topology, None)
    b = randn(1, 32 if transpose else 48, 8, g=g, device=kernel_device)
    rows_out = 48 if transpose else 32
    args = (walk.row_offsets, walk.column_indices, walk.row_swizzle, perm, a.topology.row_indices, a.column_indices,
            a.values[None], b, rows_out, out_transposed, backend)
    torch.library.opcheck(torch.ops.sgk.bsr_spmm.default, args)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_opcheck_bsr_sddmm(kernel_device, backend):
    g = gen(16)
    a = _bsr(32, 48, 16, 0.5, g, device=kernel_device)
    x, y = randn(1, 32, 8, g=g, device=kernel_device), randn(2, 48, 8, g=g, device=kernel_device)
    torch.library.opcheck(torch.ops.sgk.bsr_sddmm.default, (a.topology.row_indices, a.column_indices, x, y, 16, backend))


def test_compile_matches_eager():
    """torch.compile (aot_eager) traces bsr_spmm, bsr_dsmm and bsr_sddmm with gradients."""
    g = gen(17)
    a = _bsr(32, 48, 16, 0.5, g)
    a.topology.prepare(transpose=True)
    b, x, y = randn(48, 8, g=g), randn(6, 32, g=g), randn(48, 6, g=g)

    def fn(v, b, x):
        w = a.with_values(v)
        return sgk.bsr_spmm(w, b).sum() + sgk.bsr_dsmm(x, w).square().sum() + sgk.bsr_sddmm(x.T, y, w).values.sum()

    leaves = [t.clone().requires_grad_() for t in (a.values, b, x)]
    eager = fn(*leaves)
    eager.backward()
    want = [t.grad for t in leaves]
    leaves2 = [t.detach().clone().requires_grad_() for t in leaves]
    out = torch.compile(fn, backend="aot_eager")(*leaves2)
    out.backward()
    torch.testing.assert_close(out, eager)
    for got, ref in zip((t.grad for t in leaves2), want):
        torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("n", [1, 3, 17])
def test_kernel_small_and_odd_widths(kernel_device, n):
    """N = 1 and odd N (a partial column tile, d below BLOCK_D), p = n rows for X·A."""
    g = gen(18)
    a = _bsr(32, 48, 16, 0.5, g, device=kernel_device, empty_rows=(0,))
    b = randn(48, n, g=g, device=kernel_device)
    x = randn(n, 32, g=g, device=kernel_device)
    dense = a.to_dense().double()
    tol = _tol_dtype(torch.float32, kernel_device)
    assert_close(sgk.bsr_spmm(a, b, method="triton"), dense @ b.double(), tol, 48)
    assert_close(sgk.bsr_dsmm(x, a, method="triton"), x.double() @ dense, tol, 32)
    xs, ys = randn(32, n, g=g, device=kernel_device), randn(48, n, g=g, device=kernel_device)
    expected = sgk.BSRMatrix.from_dense(xs.double() @ ys.double().T, 16, mask=a.block_mask()).values
    assert_close(sgk.bsr_sddmm(xs, ys, a, method="triton").values, expected, tol, n)


def test_triton_refuses_float64(kernel_device):
    a = _bsr(32, 32, 16, 0.5, gen(19), dtype=torch.float64, device=kernel_device)
    with pytest.raises(TypeError, match=r"bsr_spmm\(\): the Triton kernels take float32, float16 or bfloat16"):
        sgk.bsr_spmm(a, torch.randn(32, 4, dtype=torch.float64, device=kernel_device), method="triton")


def test_probe_tma_kernel_matches(kernel_device, monkeypatch):
    """The persistent TMA block-sparse SpMM of benchmarks/probe_bsr_tma.py (a device experiment, not
    yet a library path) computes A·B: blocks in any number per row (none too), N not a multiple of
    the tile, more tiles than programs."""
    import importlib.util
    import sys
    from pathlib import Path

    bench_dir = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench_dir))
    spec = importlib.util.spec_from_file_location("probe_bsr_tma", bench_dir / "probe_bsr_tma.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "probe_bsr_tma", mod)
    spec.loader.exec_module(mod)
    g = gen(95)
    for sparsity in (0.5, 1.0):
        a = sgk.BSRMatrix.random(96, 64, 16, sparsity, dtype=torch.float16, generator=g).to(kernel_device)
        b = randn(64, 48, g=g, dtype=torch.float16, device=kernel_device)
        c = mod.bsr_spmm_tma(a, b, 32, 4, 2, 3)
        assert_close(c, a.to_dense().double() @ b.double(), torch.float16, 64)
