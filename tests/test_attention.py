"""sgk.attention (SDDMM → sparse softmax → SpMM), per-sample topologies, and sgk.patterns.

Oracle: dense float64 attention with the scores outside the topology masked to −inf.
"""
from __future__ import annotations

import math

import pytest
import torch

import sgk
from sgk.testing import assert_close

from _helpers import gen, poison_kernel_outputs, randn

pytestmark = [pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")]


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    poison_kernel_outputs(monkeypatch)


def dense_attention(q, k, v, topology: sgk.CSRMatrix, scale=None, causal=False):
    """float64 masked dense attention; rows with no allowed key give zeros."""
    L, Lk = topology.shape
    mask = torch.zeros(L, Lk, dtype=torch.bool)
    mask[topology.row_indices.long().cpu(), topology.column_indices.long().cpu()] = True
    if causal:
        mask &= torch.ones(L, Lk, dtype=torch.bool).tril()
    mask = mask.to(q.device)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q.double() @ k.double().transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    return p @ v.double()


# -- patterns ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda c: sgk.patterns.band_and_decay(128, 0.9, causal=c, seed=1),
        lambda c: sgk.patterns.random_uniform(128, 0.9, causal=c, seed=1),
        lambda c: sgk.patterns.local_band(128, 5, causal=c),
        lambda c: sgk.patterns.strided(128, 8, causal=c),
    ],
    ids=["band_and_decay", "random_uniform", "local_band", "strided"],
)
@pytest.mark.parametrize("causal", [False, True])
def test_patterns_hold_the_diagonal_and_respect_causality(build, causal):
    t = build(causal)
    t.validate()
    rows, cols = t.row_indices.long(), t.column_indices.long()
    assert t.shape == (128, 128)
    diag = torch.zeros(128, dtype=torch.bool)
    diag[rows[rows == cols]] = True
    assert diag.all(), "every query must attend to itself"
    if causal:
        assert bool((cols <= rows).all())


def test_band_and_decay_refuses_a_non_positive_decay():
    for decay in (0, -1, "x", True):
        with pytest.raises(ValueError, match=r"band_and_decay\(\): decay must be a positive number"):
            sgk.patterns.band_and_decay(64, 0.9, decay=decay)


def test_band_and_decay_sparsity_and_reproducibility():
    a = sgk.patterns.band_and_decay(512, 0.95, seed=3)
    b = sgk.patterns.band_and_decay(512, 0.95, seed=3)
    assert torch.equal(a.column_indices, b.column_indices)
    assert a.sparsity == pytest.approx(0.95, abs=0.01)


# -- the op ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_reference_matches_dense_float64(causal):
    g = gen(0)
    topo = sgk.patterns.band_and_decay(64, 0.8, seed=2)
    q, k, v = (randn(2, 64, 8, g=g, dtype=torch.float64) for _ in range(3))
    out = sgk.attention(q, k, v, topo, causal=causal, method="reference")
    torch.testing.assert_close(out, dense_attention(q, k, v, topo, causal=causal), rtol=1e-12, atol=1e-12)


def test_kernels_forward_and_gradients(kernel_device):
    g = gen(1)
    topo = sgk.patterns.random_uniform(48, 0.75, seed=4).to(kernel_device)
    q, k, v = (randn(2, 48, 16, g=g, device=kernel_device).requires_grad_() for _ in range(3))
    out = sgk.attention(q, k, v, topo, scale=0.3, method="triton")
    assert_close(out, dense_attention(q, k, v, topo, scale=0.3), torch.float32, 48)
    gout = randn(*out.shape, g=g, device=kernel_device)
    out.backward(gout)
    leaves = [t.detach().double().requires_grad_() for t in (q, k, v)]
    dense_attention(*leaves, topo, scale=0.3).backward(gout.double())
    for got, ref in zip((q.grad, k.grad, v.grad), leaves):
        assert_close(got, ref.grad, torch.float32, 48, slack=4.0)


def test_gradcheck_float64():
    g = gen(2)
    topo = sgk.patterns.local_band(12, 2)
    q, k, v = (randn(12, 4, g=g, dtype=torch.float64).requires_grad_() for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: sgk.attention(q, k, v, topo, causal=True), (q, k, v))


# -- per-sample topologies ---------------------------------------------------------------------------
def test_block_diagonal_matrix():
    g = gen(3)
    a = sgk.CSRMatrix.random(5, 7, 0.6, generator=g, batch_shape=(2,))
    b = sgk.CSRMatrix.random(3, 4, 0.5, generator=g, batch_shape=(2,))
    d = sgk.CSRMatrix.block_diagonal([a, b])
    d.validate()
    assert d.shape == (8, 11) and d.nnz == a.nnz + b.nnz
    expected = torch.zeros(2, 8, 11)
    expected[:, :5, :7] = a.to_dense()
    expected[:, 5:, 7:] = b.to_dense()
    torch.testing.assert_close(d.to_dense(), expected)
    with pytest.raises(ValueError, match="same values batch shape"):
        sgk.CSRMatrix.block_diagonal([a, sgk.CSRMatrix.random(3, 4, 0.5, generator=g)])
    with pytest.raises(TypeError, match=r"matrices\[1\] must be an sgk.CSRMatrix"):
        sgk.CSRMatrix.block_diagonal([a, torch.zeros(3, 4)])


def test_block_diagonal_runs_per_sample_ops_in_one_call(kernel_device):
    """spmm / sddmm / softmax on the block-diagonal pattern equal the per-sample ops."""
    g = gen(4)
    mats = [sgk.CSRMatrix.random(16, 12, 0.7, generator=g, distribution="skewed", row_cv=0.5).to(kernel_device) for _ in range(3)]
    d = sgk.CSRMatrix.block_diagonal(mats)
    b = randn(3, 12, 8, g=g, device=kernel_device)
    c = sgk.spmm(d, b.reshape(36, 8), method="triton").reshape(3, 16, 8)
    x, y = randn(3, 16, 5, g=g, device=kernel_device), randn(3, 12, 5, g=g, device=kernel_device)
    s = sgk.sddmm(x.reshape(48, 5), y.reshape(36, 5), d, method="triton").values
    sm = sgk.sparse_softmax(d, scale=0.5, method="triton").values
    offset = 0
    for i, a in enumerate(mats):
        assert_close(c[i], a.to_dense().double() @ b[i].double(), torch.float32, 12)
        sl = slice(offset, offset + a.nnz)
        assert_close(s[sl], sgk.sddmm(x[i], y[i], a, method="reference").values.double(), torch.float32, 5)
        assert_close(sm[sl], sgk.sparse_softmax(a, scale=0.5, method="reference").values.double(), torch.float32, 12)
        offset += a.nnz


@pytest.mark.parametrize("causal", [False, True])
def test_attention_per_sample_topologies(kernel_device, causal):
    g = gen(5)
    topos = [sgk.patterns.band_and_decay(32, 0.8, seed=s, causal=causal).to(kernel_device) for s in range(3)]
    q, k, v = (randn(3, 2, 32, 8, g=g, device=kernel_device) for _ in range(3))  # (samples, heads, L, d)
    out = sgk.attention(q, k, v, topos, causal=causal, method="triton")
    assert out.shape == (3, 2, 32, 8)
    for i, t in enumerate(topos):
        assert_close(out[i], dense_attention(q[i], k[i], v[i], t, causal=causal), torch.float32, 32)


def test_attention_per_sample_errors():
    topos = [sgk.patterns.local_band(8, 1), sgk.patterns.local_band(8, 1)]
    q = torch.randn(3, 8, 4)
    with pytest.raises(ValueError, match=r"with 2 per-sample topologies, q must be \(B=2"):
        sgk.attention(q, q, q, topos)
    with pytest.raises(ValueError, match="must share one shape"):
        sgk.attention(q[:2], q[:2], q[:2], [topos[0], sgk.patterns.local_band(9, 1)])
    rect = sgk.CSRMatrix.random(8, 6, 0.5, generator=gen(7))
    kv = torch.randn(2, 6, 4)
    with pytest.raises(ValueError, match="causal per-sample attention needs square topologies"):
        sgk.attention(q[:2], kv, kv, [rect, rect], causal=True)
    with pytest.raises(TypeError, match=r"topology\[1\] must be an sgk.CSRMatrix"):
        sgk.attention(q[:2], q[:2], q[:2], [topos[0], torch.zeros(8, 8)])
    out = sgk.attention(q[:2], kv, kv, [rect, rect])  # rectangular without causal is fine
    assert out.shape == (2, 8, 4)


def test_attention_per_sample_broadcasts_the_inner_batch():
    """With per-sample topologies, q, k and v broadcast over the dimensions after the sample's (a q
    shared by the heads of k and v, or a 3-D q against 4-D k and v), as with one topology."""
    g = gen(11)
    topos = [sgk.CSRMatrix.random(6, 5, 0.5, generator=g), sgk.CSRMatrix.random(6, 5, 0.3, generator=g)]
    k, v = randn(2, 3, 5, 4, g=g), randn(2, 3, 5, 2, g=g)
    for q in (randn(2, 1, 6, 4, g=g), randn(2, 6, 4, g=g)):
        out = sgk.attention(q, k, v, topos)
        assert out.shape == (2, 3, 6, 2)
        q4 = q if q.dim() == 4 else q[:, None]
        for i, t in enumerate(topos):
            assert_close(out[i], dense_attention(q4[i].expand(3, 6, 4), k[i], v[i], t), torch.float32, 5)


def test_attention_argument_errors():
    """scale must be a number; batch shapes that do not broadcast are reported by attention(),
    naming q, k and v (not the inner sddmm's or spmm's arguments); an empty batch gives an empty
    result."""
    a = sgk.CSRMatrix.random(4, 5, 0.5, generator=gen(12))
    q, k, v = torch.randn(4, 2), torch.randn(5, 2), torch.randn(5, 3)
    with pytest.raises(TypeError, match=r"attention\(\): scale must be a number or None, got str"):
        sgk.attention(q, k, v, a, scale="x")
    with pytest.raises(TypeError, match="scale must be a number"):
        sgk.attention(q, k, v, a, scale=True)
    with pytest.raises(ValueError, match=r"attention\(\): batch dimensions do not broadcast: q batch shape \(2,\), k batch"):
        sgk.attention(torch.randn(2, 4, 2), torch.randn(3, 5, 2), torch.randn(3, 5, 3), a)
    with pytest.raises(ValueError, match=r"attention\(\): .* v batch shape \(3,\)"):
        sgk.attention(torch.randn(2, 4, 2), torch.randn(2, 5, 2), torch.randn(3, 5, 3), a)
    assert sgk.attention(torch.randn(0, 4, 2), torch.randn(0, 5, 2), torch.randn(0, 5, 3), a).shape == (0, 4, 3)


@pytest.mark.gpu
def test_gpu_per_sample_attention_bf16_with_gradients():
    g = gen(6)
    topos = [sgk.patterns.band_and_decay(1024, 0.95, seed=s, device="cuda") for s in range(2)]
    q, k, v = (randn(2, 4, 1024, 64, g=g, dtype=torch.bfloat16, device="cuda").requires_grad_() for _ in range(3))
    out = sgk.attention(q, k, v, topos)
    for i, t in enumerate(topos):
        assert_close(out[i], dense_attention(q[i], k[i], v[i], t), torch.bfloat16, 1024, slack=2.0)
    out.float().square().sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))
