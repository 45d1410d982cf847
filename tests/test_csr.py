"""CSRMatrix and Topology: constructors, conversions, transpose, cached metadata, validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sgk
from sgk import CSRMatrix, Topology

from _helpers import csr_from_lengths, gen, randn

scipy_sparse = pytest.importorskip("scipy.sparse")

pytestmark = [
    pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning"),
    pytest.mark.filterwarnings("ignore:Sparse invariant checks are implicitly disabled:UserWarning"),
]


def _sparse_dense(m, k, g, density=0.3, batch=()):
    """A dense (*batch, m, k) tensor with about ``density`` nonzeros, none of them tiny."""
    x = randn(*batch, m, k, g=g)
    x = x + torch.where(x >= 0, 0.1, -0.1)
    keep = torch.rand(*batch, m, k, generator=g, dtype=torch.float64) < density
    return torch.where(keep, x, torch.zeros_like(x)).float()


def _assert_sorted_valid(a: CSRMatrix):
    a.validate()
    assert a.row_offsets.dtype == torch.int32 and a.column_indices.dtype == torch.int32
    assert a.row_offsets.is_contiguous() and a.column_indices.is_contiguous()


# -- from_dense ------------------------------------------------------------------------------------
def test_from_dense_keeps_nonzeros():
    x = _sparse_dense(7, 9, gen(0))
    x[0] = 0  # first row empty
    x[-1] = 0  # last row empty
    a = CSRMatrix.from_dense(x)
    _assert_sorted_valid(a)
    assert a.shape == (7, 9) and a.nnz == int((x != 0).sum()) and a.batch_shape == ()
    assert a.dtype == torch.float32
    torch.testing.assert_close(a.to_dense(), x, rtol=0, atol=0)
    assert int(a.topology.row_lengths[0]) == 0 and int(a.topology.row_lengths[-1]) == 0


def test_from_dense_batched_uses_the_union_of_patterns():
    x = _sparse_dense(5, 6, gen(1), batch=(2, 3))
    a = CSRMatrix.from_dense(x)
    _assert_sorted_valid(a)
    union = (x != 0).flatten(0, 1).any(0)
    assert a.batch_shape == (2, 3) and a.nnz == int(union.sum())
    torch.testing.assert_close(a.to_dense(), x, rtol=0, atol=0)


def test_from_dense_mask_keeps_exactly_the_mask():
    g = gen(2)
    x = randn(6, 8, g=g).float()
    x[1, 2] = 0.0  # an explicit zero inside the mask is stored
    mask = torch.rand(6, 8, generator=g) < 0.4
    mask[1, 2] = True
    a = CSRMatrix.from_dense(x, mask)
    _assert_sorted_valid(a)
    assert a.nnz == int(mask.sum())
    torch.testing.assert_close(a.to_dense(), torch.where(mask, x, torch.zeros_like(x)), rtol=0, atol=0)
    rows, cols = a.row_indices.long(), a.column_indices.long()
    assert bool(mask[rows, cols].all())


def test_from_dense_sparsity_prunes_by_magnitude():
    g = gen(3)
    x = (torch.randperm(100, generator=g).float() + 1.0).reshape(10, 10)
    x = x * torch.where(torch.rand(10, 10, generator=g) < 0.5, -1.0, 1.0)
    a = CSRMatrix.from_dense(x, sparsity=0.9)
    _assert_sorted_valid(a)
    assert a.nnz == 10
    kept = set(a.values.abs().tolist())
    assert kept == set(range(91, 101))


def test_from_dense_sparsity_batched_ranks_by_magnitude_summed_over_batch():
    # Entry (0, 0) is the largest in batch 0 only; entries (1, 1) and (0, 1) win on the sum.
    x = torch.tensor(
        [
            [[10.0, 6.0], [0.5, 6.0]],
            [[0.1, 6.0], [0.5, 6.0]],
        ]
    )
    a = CSRMatrix.from_dense(x, sparsity=0.5)
    _assert_sorted_valid(a)
    assert a.batch_shape == (2,)
    assert a.column_indices.tolist() == [1, 1] and a.row_offsets.tolist() == [0, 1, 2]
    torch.testing.assert_close(a.values, torch.tensor([[6.0, 6.0], [6.0, 6.0]]))


@pytest.mark.parametrize("sparsity, nnz", [(0.0, 12), (1.0, 0)])
def test_from_dense_sparsity_extremes(sparsity, nnz):
    a = CSRMatrix.from_dense(randn(3, 4, g=gen(4)).float(), sparsity=sparsity)
    _assert_sorted_valid(a)
    assert a.nnz == nnz


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"x": torch.ones(3, 4, dtype=torch.int32)}, TypeError, r"from_dense\(\): x must be floating"),
        ({"x": torch.ones(4)}, ValueError, r"from_dense\(\): x must have shape \(\*batch, m, k\)"),
        ({"x": torch.ones(3, 4), "mask": torch.ones(4, 3, dtype=torch.bool)}, ValueError, r"from_dense\(\): mask must be"),
        (
            {"x": torch.ones(3, 4), "mask": torch.ones(3, 4, dtype=torch.bool), "sparsity": 0.5},
            ValueError,
            r"from_dense\(\): give mask or sparsity",
        ),
        ({"x": torch.ones(3, 4), "sparsity": 1.5}, ValueError, r"from_dense\(\): sparsity must be in \[0, 1\]"),
        ({"x": "sparse-csr"}, TypeError, r"from_dense\(\): x must be a dense tensor"),
    ],
    ids=["int", "1d", "mask-shape", "mask-and-sparsity", "sparsity-range", "sparse-input"],
)
def test_from_dense_errors(kwargs, exc, match):
    if isinstance(kwargs["x"], str):  # built here, not at collection (beta-warning noise)
        kwargs = {"x": torch.eye(3).to_sparse_csr()}
    with pytest.raises(exc, match=match):
        CSRMatrix.from_dense(**kwargs)


# -- from_torch ------------------------------------------------------------------------------------
def test_from_torch_csr_round_trip():
    x = _sparse_dense(6, 5, gen(5))
    t = x.to_sparse_csr()
    a = CSRMatrix.from_torch(t)
    _assert_sorted_valid(a)
    torch.testing.assert_close(a.to_dense(), x, rtol=0, atol=0)
    back = a.to_torch()
    assert back.layout == torch.sparse_csr
    torch.testing.assert_close(back.to_dense(), x, rtol=0, atol=0)


def test_from_torch_batched_csr_shares_one_pattern():
    g = gen(6)
    crow = torch.tensor([0, 2, 2, 3])
    col = torch.tensor([0, 3, 1])
    vals = randn(2, 3, g=g).float()
    t = torch.sparse_csr_tensor(crow.expand(2, 4), col.expand(2, 3), vals, size=(2, 3, 4))
    a = CSRMatrix.from_torch(t)
    _assert_sorted_valid(a)
    assert a.batch_shape == (2,) and a.shape == (3, 4) and a.nnz == 3
    torch.testing.assert_close(a.to_dense(), t.to_dense(), rtol=0, atol=0)
    back = a.to_torch()
    assert back.shape == (2, 3, 4)
    torch.testing.assert_close(back.to_dense(), t.to_dense(), rtol=0, atol=0)


def test_from_torch_batched_csr_without_nonzeros():
    """Regression: flattening the batch of a (*batch, 0) col tensor must not reshape(-1, 0)."""
    a = CSRMatrix.random(3, 5, 1.0, batch_shape=(2,), generator=gen(60))
    b = CSRMatrix.from_torch(a.to_torch())
    assert b.shape == (3, 5) and b.nnz == 0 and b.batch_shape == (2,)


def test_from_torch_batched_csr_with_different_patterns_is_refused():
    crow = torch.tensor([[0, 1, 2], [0, 1, 2]])
    col = torch.tensor([[0, 1], [1, 0]])
    t = torch.sparse_csr_tensor(crow, col, torch.ones(2, 2), size=(2, 2, 2))
    with pytest.raises(ValueError, match=r"from_torch\(\): a batched CSR tensor must share one pattern"):
        CSRMatrix.from_torch(t)


def test_from_torch_uncoalesced_coo_sums_duplicates():
    idx = torch.tensor([[2, 0, 2, 1, 0], [1, 3, 1, 0, 0]])
    vals = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    t = torch.sparse_coo_tensor(idx, vals, (3, 4))
    assert not t.is_coalesced()
    a = CSRMatrix.from_torch(t)
    _assert_sorted_valid(a)
    assert a.nnz == 4
    torch.testing.assert_close(a.to_dense(), t.to_dense(), rtol=0, atol=0)
    assert a.to_dense()[2, 1] == 4.0


@pytest.mark.parametrize(
    "t, exc, match",
    [
        (torch.ones(2, 2), TypeError, r"from_torch\(\): expected layout .*use CSRMatrix\.from_dense"),
        ("not a tensor", TypeError, r"from_torch\(\): expected a torch sparse tensor, got str"),
        (torch.ones(2, 2, 2).to_sparse(), ValueError, r"from_torch\(\): COO input must be 2-D"),
    ],
    ids=["dense", "str", "coo-3d"],
)
def test_from_torch_errors(t, exc, match):
    with pytest.raises(exc, match=match):
        CSRMatrix.from_torch(t)


# -- from_scipy / to_scipy ---------------------------------------------------------------------------
def test_from_scipy_sums_duplicates_and_sorts_indices():
    rows = np.array([1, 0, 1, 0, 1])
    cols = np.array([3, 2, 0, 2, 3])
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    s = scipy_sparse.coo_matrix((data, (rows, cols)), shape=(2, 5))
    a = CSRMatrix.from_scipy(s)
    _assert_sorted_valid(a)
    assert a.dtype == torch.float64 and a.nnz == 3
    np.testing.assert_array_equal(a.to_dense().numpy(), s.toarray())


def test_from_scipy_csr_with_unsorted_indices():
    indptr = np.array([0, 3, 3, 5])
    indices = np.array([4, 0, 2, 3, 1])
    data = np.arange(1.0, 6.0, dtype=np.float32)
    s = scipy_sparse.csr_matrix((data, indices, indptr), shape=(3, 5))
    assert not s.has_sorted_indices
    a = CSRMatrix.from_scipy(s)
    _assert_sorted_valid(a)
    assert a.column_indices.tolist() == [0, 2, 4, 1, 3]
    np.testing.assert_array_equal(a.to_dense().numpy(), s.toarray())
    # the caller's matrix is not modified
    assert s.indices.tolist() == [4, 0, 2, 3, 1]


def test_from_scipy_integer_data_and_dtype_argument():
    s = scipy_sparse.csr_matrix(np.array([[0, 2], [3, 0]], dtype=np.int64))
    assert CSRMatrix.from_scipy(s).dtype == torch.float32
    a = CSRMatrix.from_scipy(s, dtype=torch.float16, device="cpu")
    assert a.dtype == torch.float16
    assert a.to_dense().tolist() == [[0.0, 2.0], [3.0, 0.0]]


def test_from_scipy_rejects_non_scipy():
    with pytest.raises(TypeError, match=r"from_scipy\(\): expected a scipy\.sparse matrix, got Tensor"):
        CSRMatrix.from_scipy(torch.ones(2, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_to_scipy_round_trip(dtype):
    a = CSRMatrix.random(9, 7, 0.6, dtype=dtype, generator=gen(7))
    s = a.to_scipy()
    assert s.shape == (9, 7) and s.nnz == a.nnz
    np.testing.assert_array_equal(s.toarray(), a.to_dense().float().numpy())
    b = CSRMatrix.from_scipy(s, dtype=dtype)
    assert torch.equal(b.row_offsets, a.row_offsets) and torch.equal(b.column_indices, a.column_indices)
    assert torch.equal(b.values, a.values)


def test_to_scipy_refuses_batched_values():
    a = CSRMatrix.random(3, 3, 0.5, batch_shape=(2,), generator=gen(8))
    with pytest.raises(ValueError, match=r"to_scipy\(\): batched values"):
        a.to_scipy()


# -- random ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("distribution", ["uniform", "skewed"])
def test_random_exact_nnz_sorted_valid(distribution):
    m, k, sparsity = 200, 96, 0.85
    a = CSRMatrix.random(m, k, sparsity, distribution=distribution, generator=gen(9))
    _assert_sorted_valid(a)
    assert a.shape == (m, k) and a.nnz == round((1 - sparsity) * m * k)
    assert a.values.shape == (a.nnz,) and a.dtype == torch.float32
    assert a.topology.max_row_length <= k


@pytest.mark.parametrize("cv", [0.2, 0.7])
def test_random_skewed_row_length_cv(cv):
    a = CSRMatrix.random(2048, 512, 0.9, distribution="skewed", row_cv=cv, generator=gen(10))
    assert a.nnz == round(0.1 * 2048 * 512)
    assert abs(a.topology.stats()["cv"] - cv) < 0.25 * cv
    uniform = CSRMatrix.random(2048, 512, 0.9, generator=gen(10))
    assert uniform.topology.stats()["cv"] < 0.2  # binomial: sqrt((1 - p) / (p k)) ≈ 0.13


def test_random_skewed_caps_rows_at_k():
    a = CSRMatrix.random(64, 16, 0.2, distribution="skewed", row_cv=1.5, generator=gen(11))
    _assert_sorted_valid(a)
    assert a.nnz == round(0.8 * 64 * 16) and a.topology.max_row_length <= 16


@pytest.mark.parametrize("distribution", ["uniform", "skewed"])
def test_random_generator_reproducible(distribution):
    def make(seed):
        return CSRMatrix.random(40, 30, 0.7, distribution=distribution, batch_shape=(2,), generator=gen(seed))

    a, b, c = make(12), make(12), make(13)
    assert torch.equal(a.row_offsets, b.row_offsets) and torch.equal(a.column_indices, b.column_indices)
    assert torch.equal(a.values, b.values) and a.values.shape == (2, a.nnz)
    assert not (torch.equal(a.column_indices, c.column_indices) and torch.equal(a.values, c.values))


def test_random_without_generator_follows_and_keeps_the_global_seed():
    """Regression: random() used to call torch.seed(), re-seeding the global RNG non-deterministically."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        a1, after1 = CSRMatrix.random(6, 6, 0.5), torch.randn(3)
        torch.manual_seed(0)
        a2, after2 = CSRMatrix.random(6, 6, 0.5), torch.randn(3)
    assert torch.equal(after1, after2), "random() re-seeded the global generator"
    assert torch.equal(a1.column_indices, a2.column_indices) and torch.equal(a1.values, a2.values)


@pytest.mark.parametrize("m, k, sparsity", [(0, 5, 0.5), (5, 0, 0.5), (4, 4, 1.0), (4, 4, 0.0)])
def test_random_degenerate(m, k, sparsity):
    a = CSRMatrix.random(m, k, sparsity, generator=gen(14), dtype=torch.float16)
    _assert_sorted_valid(a)
    assert a.nnz == round((1 - sparsity) * m * k) and a.dtype == torch.float16


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"sparsity": -0.1}, ValueError, r"random\(\): sparsity must be in \[0, 1\]"),
        ({"sparsity": 0.5, "distribution": "zipf"}, ValueError, r"random\(\): distribution must be"),
        ({"sparsity": 0.5, "dtype": torch.int32}, TypeError, r"random\(\): dtype must be floating"),
    ],
    ids=["sparsity", "distribution", "dtype"],
)
def test_random_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CSRMatrix.random(4, 4, **kwargs)


# -- conversions -----------------------------------------------------------------------------------
def test_to_dense_is_differentiable_in_values():
    a = CSRMatrix.random(5, 6, 0.5, generator=gen(15), dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    w = randn(5, 6, g=gen(16), dtype=torch.float64)
    (a.with_values(v).to_dense() * w).sum().backward()
    torch.testing.assert_close(v.grad, w[a.row_indices.long(), a.column_indices.long()])


def test_to_dtype_keeps_the_topology_object():
    a = CSRMatrix.random(8, 8, 0.5, generator=gen(17))
    _ = a.row_swizzle  # populate the cache
    h = a.to(torch.float16)
    assert h.dtype == torch.float16 and h.topology is a.topology
    torch.testing.assert_close(h.values, a.values.half())
    assert a.to("cpu") is a and a.to(torch.float32) is a and a.cpu() is a
    like = a.to(torch.zeros(1, dtype=torch.float64))
    assert like.dtype == torch.float64
    assert a.to(dtype=torch.bfloat16).dtype == torch.bfloat16


def test_to_device_moves_the_topology():
    # The meta device stands in for a second device on a CPU-only machine.
    a = CSRMatrix.random(8, 8, 0.5, generator=gen(18))
    b = a.to("meta")
    assert b.device.type == "meta" and b.row_offsets.device.type == "meta"
    assert b.column_indices.device.type == "meta" and b.topology.device.type == "meta"
    assert a.to("meta").topology is b.topology  # the moved topology is cached


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((torch.int32,), {}, TypeError, r"CSRMatrix\.to\(\): dtype must be floating"),
        ((3.5,), {}, TypeError, r"CSRMatrix\.to\(\): expected a device, dtype or tensor, got float"),
        ((), {"memory_format": torch.contiguous_format}, TypeError, r"CSRMatrix\.to\(\): unexpected keyword"),
    ],
    ids=["int-dtype", "float-arg", "bad-kwarg"],
)
def test_to_errors(args, kwargs, exc, match):
    a = CSRMatrix.random(3, 3, 0.5, generator=gen(19))
    with pytest.raises(exc, match=match):
        a.to(*args, **kwargs)


# -- transpose -------------------------------------------------------------------------------------
def test_t_equals_dense_transpose_and_round_trips_to_the_cached_topology():
    g = gen(20)
    a = csr_from_lengths([0, 3, 1, 0, 5, 2], 7, g)  # empty rows, and columns 0..6 some empty
    at = a.t()
    _assert_sorted_valid(at)
    assert at.shape == (7, 6)
    torch.testing.assert_close(at.to_dense(), a.to_dense().t(), rtol=0, atol=0)
    att = at.t()
    assert att.topology is a.topology
    assert torch.equal(att.values, a.values)
    assert a.t().topology is at.topology  # computed once
    assert a.T.topology is at.topology
    assert sgk.transpose(a).topology is at.topology


def test_t_batched_values():
    a = CSRMatrix.random(5, 9, 0.6, batch_shape=(2, 3), generator=gen(21))
    at = a.t()
    assert at.batch_shape == (2, 3)
    torch.testing.assert_close(at.to_dense(), a.to_dense().transpose(-1, -2), rtol=0, atol=0)


def test_t_empty():
    a = CSRMatrix(torch.zeros(4, dtype=torch.int32), torch.zeros(0, dtype=torch.int32), torch.zeros(0), (3, 5))
    at = a.t()
    _assert_sorted_valid(at)
    assert at.shape == (5, 3) and at.nnz == 0 and at.row_offsets.tolist() == [0] * 6


def test_t_is_differentiable():
    a = CSRMatrix.random(4, 6, 0.5, generator=gen(22), dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    w = randn(6, 4, g=gen(23), dtype=torch.float64)
    (a.with_values(v).t().to_dense() * w).sum().backward()
    torch.testing.assert_close(v.grad, w.t()[a.row_indices.long(), a.column_indices.long()])


# -- cached metadata -------------------------------------------------------------------------------
def test_row_swizzle_row_indices_max_row_length():
    lengths = [2, 0, 5, 1, 5, 3, 0]
    a = csr_from_lengths(lengths, 8, gen(24))
    sw = a.row_swizzle
    assert sw.dtype == torch.int32 and sorted(sw.tolist()) == list(range(len(lengths)))
    ordered = [lengths[i] for i in sw.tolist()]
    assert ordered == sorted(lengths, reverse=True)
    assert sw.tolist()[:2] == [2, 4]  # ties keep row order (stable)
    assert a.row_swizzle is sw  # cached
    expected_rows = [i for i, n in enumerate(lengths) for _ in range(n)]
    assert a.row_indices.dtype == torch.int32 and a.row_indices.tolist() == expected_rows
    assert a.topology.max_row_length == 5
    assert a.topology.row_lengths.tolist() == lengths
    bounds = a.topology.row_bounds  # the swizzled rows' offsets, in swizzle order
    offsets = a.topology.row_offsets.tolist()
    assert bounds.shape == (2, len(lengths)) and bounds.dtype == a.topology.row_offsets.dtype
    assert bounds[0].tolist() == [offsets[r] for r in sw.tolist()]
    assert bounds[1].tolist() == [offsets[r + 1] for r in sw.tolist()]
    assert a.topology.row_bounds is bounds  # cached
    stats = a.topology.stats()
    assert stats["max"] == 5.0 and stats["mean"] == pytest.approx(16 / 7)


def test_metadata_of_an_empty_matrix():
    a = CSRMatrix(torch.zeros(1, dtype=torch.int32), torch.zeros(0, dtype=torch.int32), torch.zeros(0), (0, 4))
    assert a.row_swizzle.numel() == 0 and a.row_indices.numel() == 0 and a.topology.row_bounds.shape == (2, 0)
    assert a.topology.max_row_length == 0 and a.density == 0.0


def test_properties_and_with_values():
    a = CSRMatrix.random(10, 10, 0.8, generator=gen(25))
    assert a.nnz == 20 and a.density == pytest.approx(0.2) and a.sparsity == pytest.approx(0.8)
    assert "CSRMatrix(shape=(10, 10), nnz=20" in repr(a)
    b = a.with_values(randn(3, 20, g=gen(26)).float())
    assert b.topology is a.topology and b.batch_shape == (3,)
    assert not a.requires_grad and a.detach().topology is a.topology
    with pytest.raises(ValueError, match=r"with_values\(\): values must have shape \(\*batch, 20\)"):
        a.with_values(torch.ones(19))
    with pytest.raises(TypeError, match=r"with_values\(\): values must be floating"):
        a.with_values(torch.ones(20, dtype=torch.int64))


# -- validate --------------------------------------------------------------------------------------
def _raw(offsets, cols, shape):
    i32 = torch.int32
    return CSRMatrix(torch.tensor(offsets, dtype=i32), torch.tensor(cols, dtype=i32), torch.ones(len(cols)), shape)


@pytest.mark.parametrize(
    "offsets, cols, shape, match",
    [
        ([0, 2, 3], [3, 1, 0], (2, 4), r"column_indices must be strictly increasing within each row.*row 0"),
        ([0, 1, 3], [0, 2, 2], (2, 4), r"column_indices must be strictly increasing within each row.*row 1"),
        ([0, 2, 3], [0, 4, 1], (2, 4), r"column_indices must lie in \[0, 4\); entry 1 is 4"),
        ([0, 2, 3], [-1, 0, 1], (2, 4), r"column_indices must lie in \[0, 4\); entry 0 is -1"),
        ([0, 2, 1, 3], [0, 1, 2], (3, 4), r"row_offsets must be non-decreasing; row 1"),
        ([0, 1, 2], [0, 1, 2], (2, 4), r"row_offsets\[-1\] must equal nnz = 3, got 2"),
        ([1, 2, 3], [0, 1, 2], (2, 4), r"row_offsets\[0\] must be 0, got 1"),
    ],
    ids=["unsorted", "duplicate", "out-of-range", "negative", "decreasing-offsets", "last-offset", "first-offset"],
)
def test_validate_catches(offsets, cols, shape, match):
    a = _raw(offsets, cols, shape)  # int32 indices: the constructor checks no ranges
    with pytest.raises(ValueError, match=r"CSRMatrix\.validate\(\): " + match):
        a.validate()


def test_validate_accepts_a_good_matrix_and_returns_it():
    a = _raw([0, 0, 2, 3, 3], [1, 3, 0], (4, 4))
    assert a.validate() is a


# -- constructor errors ----------------------------------------------------------------------------
I64 = torch.int64


@pytest.mark.parametrize(
    "build, exc, match",
    [
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([1], dtype=torch.int32), (1, 2)),
            TypeError,
            r"CSRMatrix\(\): values must be a floating tensor.*got int32",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([2**31], dtype=I64), torch.ones(1), (1, 2**31 - 1)),
            ValueError,
            r"CSRMatrix\(\): column_indices holds values in \[2147483648, 2147483648\].*int32",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, 2**31)),
            ValueError,
            r"CSRMatrix\(\): shape \(1, 2147483648\) exceeds int32",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (2, 2)),
            ValueError,
            r"CSRMatrix\(\): row_offsets must have m \+ 1 = 3 entries, got shape \(2,\)",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 2]), torch.tensor([0, 1]), torch.ones(3), (1, 2)),
            ValueError,
            r"CSRMatrix\(\): values must have shape \(\*batch, nnz\) with nnz = 2, got \(3,\)",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0.0, 1.0]), torch.tensor([0]), torch.ones(1), (1, 2)),
            TypeError,
            r"CSRMatrix\(\): row_offsets must be an int32 or int64 tensor, got float32",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([0.0]), torch.ones(1), (1, 2)),
            TypeError,
            r"CSRMatrix\(\): column_indices must be an int32 or int64 tensor, got float32",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([5], dtype=I64), torch.ones(1), (1, 2)),
            ValueError,
            r"CSRMatrix\(\): column_indices holds values in \[5, 5\], outside \[0, 1\]",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1], device="meta"), torch.tensor([0]), torch.ones(1), (1, 2)),
            ValueError,
            r"CSRMatrix\(\): row_offsets, column_indices and values must be on one device",
        ),
        (
            lambda: CSRMatrix([0, 1], torch.tensor([0]), torch.ones(1), (1, 2)),
            TypeError,
            r"CSRMatrix\(\): row_offsets must be a torch\.Tensor, got list",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1), (1, 2, 3)),
            ValueError,
            r"CSRMatrix\(\): shape must be \(m, k\)",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1]), torch.tensor([0]), torch.tensor(1.0), (1, 2)),
            ValueError,
            r"CSRMatrix\(\): values must have shape \(\*batch, nnz\), got a 0-d tensor",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1, 1]), torch.tensor([0]), torch.randn(1), (2.7, 3)),
            ValueError,
            r"CSRMatrix\(\): shape must be \(m, k\) with integers m, k >= 0, got \(2.7, 3\)",
        ),
        (
            lambda: CSRMatrix(torch.tensor([0, 1, 1]), torch.tensor([0]), torch.randn(1), ("a", "b")),
            ValueError,
            r"CSRMatrix\(\): shape must be \(m, k\) with integers",
        ),
    ],
    ids=[
        "int-values",
        "int64-beyond-int32",
        "shape-beyond-int32",
        "offsets-length",
        "values-last-dim",
        "float-offsets",
        "float-columns",
        "int64-out-of-range",
        "devices",
        "list-offsets",
        "shape-rank",
        "0d-values",
        "float-shape",
        "str-shape",
    ],
)
def test_constructor_errors(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_submodules_load_on_first_use():
    """``sgk.kernels.set_autotune`` (the README's spelling) works after a plain ``import sgk``;
    an unknown attribute is still an AttributeError."""
    assert callable(sgk.kernels.set_autotune) and sgk.bench.BENCHMARKS and sgk.testing.assert_close
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sgk.nope  # noqa: B018


def test_fraction_and_shape_arguments_are_checked():
    with pytest.raises(TypeError, match=r"from_dense\(\): sparsity must be a number in \[0, 1\], got str"):
        CSRMatrix.from_dense(torch.randn(4, 4), sparsity="0.5")
    with pytest.raises(TypeError, match="got bool"):
        CSRMatrix.from_dense(torch.randn(4, 4), sparsity=True)
    with pytest.raises(ValueError, match=r"random\(\): shape must be \(m, k\) with integers"):
        CSRMatrix.random(4.0, 4, 0.5)


def test_constructor_accepts_numpy_and_tensor_ints_as_shape():
    a = CSRMatrix(torch.tensor([0, 1, 1]), torch.tensor([0]), torch.randn(1), (np.int64(2), torch.tensor(3)))
    assert a.shape == (2, 3) and all(type(d) is int for d in a.shape)


def test_constructor_accepts_int64_and_stores_int32():
    a = CSRMatrix(torch.tensor([0, 1, 3]), torch.tensor([2, 0, 1]), torch.ones(2, 3, dtype=torch.float16), (2, 3))
    assert a.row_offsets.dtype == torch.int32 and a.column_indices.dtype == torch.int32
    assert a.batch_shape == (2,) and isinstance(a.topology, Topology)
    a.validate()


def test_tables_built_inside_a_capture_are_not_kept(monkeypatch):
    """A table built while a CUDA graph is being captured holds its values only after a replay:
    it serves that call but is not cached for eager calls (which would read it uninitialised)."""
    import sgk.csr as csr_mod

    d = torch.tensor([[1.0, 0, 2], [0, 0, 0], [0, 3, 4]])
    t = sgk.CSRMatrix.from_dense(d).topology
    monkeypatch.setattr(csr_mod, "capturing", lambda _device: True)
    bounds = t.row_bounds
    t.prepare()
    assert "row_bounds" not in t._cache and "row_swizzle" not in t._cache
    monkeypatch.setattr(csr_mod, "capturing", lambda _device: False)
    assert torch.equal(t.row_bounds, bounds) and "row_bounds" in t._cache
