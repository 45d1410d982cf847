"""sgk.transpose / CSRMatrix.t(): the k×m transpose through the cached permutation.

Oracle: sgk.ops.reference.transpose (a dense round trip, independent of the cached permutation).
"""
from __future__ import annotations

import pytest
import torch

import sgk
from sgk.ops import reference
from sgk.testing import assert_close

from _helpers import csr_from_lengths, gen, poison_kernel_outputs, randn

pytestmark = [
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),  # interpreter, tl.where
]


def _same(actual: sgk.CSRMatrix, expected: sgk.CSRMatrix):
    assert actual.shape == expected.shape and actual.batch_shape == expected.batch_shape
    assert torch.equal(actual.row_offsets.cpu(), expected.row_offsets.cpu())
    assert torch.equal(actual.column_indices.cpu(), expected.column_indices.cpu())
    assert torch.equal(actual.values.cpu(), expected.values.cpu())


# (row lengths, k)
CASES = {
    "empty-rows-and-columns": ([0, 3, 1, 0, 5, 2], 9),
    "one-row-holds-all": ([0, 7, 0], 7),
    "m-1": ([4], 6),
    "k-1": ([1, 0, 1, 1], 1),
    "nnz-0": ([0, 0], 3),
    "m-0": ([], 3),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_matches_reference(case):
    lengths, k = CASES[case]
    a = csr_from_lengths(lengths, k, gen(0), batch=(2,))
    at = sgk.transpose(a)
    at.validate()
    _same(at, reference.transpose(a))
    torch.testing.assert_close(at.to_dense(), a.to_dense().transpose(-1, -2), rtol=0, atol=0)


def test_round_trip_returns_the_original_topology():
    a = csr_from_lengths([2, 0, 4, 1], 6, gen(1))
    at = sgk.transpose(a)
    att = sgk.transpose(at)
    assert att.topology is a.topology and torch.equal(att.values, a.values)
    assert sgk.transpose(a).topology is at.topology  # computed once per topology
    # a new matrix sharing the topology (with_values, an op's output) reuses the cache too
    assert a.with_values(a.values * 2).t().topology is at.topology


def test_permutation_and_its_inverse():
    a = csr_from_lengths([3, 1, 0, 4, 2], 7, gen(2))
    t_topo, perm = a.topology.transpose()
    back_topo, inverse = t_topo.transpose()
    assert back_topo is a.topology
    assert perm.dtype == torch.int32 and sorted(perm.tolist()) == list(range(a.nnz))
    assert torch.equal(perm.long()[inverse.long()], torch.arange(a.nnz))
    # entry e of Aᵀ comes from entry perm[e] of A: same (row, col) swapped
    rows, cols = a.row_indices.long(), a.column_indices.long()
    assert torch.equal(t_topo.row_indices.long(), cols[perm.long()])
    assert torch.equal(t_topo.column_indices.long(), rows[perm.long()])


def test_transposed_metadata():
    a = csr_from_lengths([3, 1, 0, 4, 2], 7, gen(3))
    at = a.t()
    col_counts = torch.bincount(a.column_indices.long(), minlength=7)
    assert at.topology.row_lengths.tolist() == col_counts.tolist()
    assert at.topology.max_row_length == int(col_counts.max())
    ordered = col_counts[at.row_swizzle.long()]
    assert bool((ordered[:-1] >= ordered[1:]).all())


def test_gradcheck():
    a = csr_from_lengths([2, 0, 3, 1], 5, gen(4), batch=(2,), dtype=torch.float64)
    v = a.values.clone().requires_grad_()
    w = randn(2, 5, 4, g=gen(5), dtype=torch.float64)
    fn = lambda v: (sgk.transpose(a.with_values(v)).to_dense() * w).sum(-1)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (v,))


def test_errors():
    a = csr_from_lengths([1, 2], 3, gen(6))
    with pytest.raises(TypeError, match=r"transpose\(\): a must be an sgk\.CSRMatrix, got Tensor \(build one with"):
        sgk.transpose(a.to_dense())


def test_kernels_on_the_transpose(kernel_device, monkeypatch):
    """SpMM, SDDMM and softmax through the transposed topology (what the backward passes use)."""
    poison_kernel_outputs(monkeypatch)
    g = gen(7)
    a = csr_from_lengths([3, 0, 5, 2, 1], 9, g, device=kernel_device)
    at = a.t()
    b = randn(5, 6, g=g, device=kernel_device)
    assert_close(sgk.spmm(at, b, method="triton"), at.to_dense().double() @ b.double(), torch.float32, 5)
    x, y = randn(9, 4, g=g, device=kernel_device), randn(5, 4, g=g, device=kernel_device)
    expected = (x.double() @ y.double().t())[at.row_indices.long(), at.column_indices.long()]
    assert_close(sgk.sddmm(x, y, at, method="triton").values, expected, torch.float32, 4)
    sm = sgk.sparse_softmax(at, method="triton").values
    assert_close(sm, reference.sparse_softmax(at.to(torch.float64)), torch.float32, 5)


@pytest.mark.gpu
def test_gpu_transpose_is_computed_on_the_device():
    a = sgk.CSRMatrix.random(2048, 1024, 0.9, distribution="skewed", batch_shape=(4,), generator=gen(100))
    ac = a.to("cuda")
    at = ac.t()
    assert at.row_offsets.is_cuda and at.column_indices.is_cuda and at.values.is_cuda
    _same(at, a.t())
