"""The bitmap form of a topology and the dense-tile (tensor-core) SpMM kernel that reads it.

The interpreter gets bf16 ``tl.dot`` wrong (DESIGN.md), so there the kernel widens bf16 operands
to fp32 before its product (``kernels._common.UPCAST``); the CPU runs are mostly fp16, with bf16
at two widths; the GPU runs (``pytest -m gpu``) take bf16's own tensor-core product.
"""
from __future__ import annotations

import contextlib

import pytest
import torch

import sgk
from sgk.csr import Topology
from sgk.testing import assert_close

from _helpers import bf16_slack, csr_from_lengths, gen, poison_kernel_outputs, randn

pytestmark = pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning")


@pytest.fixture(autouse=True)
def _poison(monkeypatch):
    poison_kernel_outputs(monkeypatch)


def _decode(bits: torch.Tensor, offsets: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The dense matrix the kernel sees, rebuilt in Python from (bits, word_offsets, values)."""
    m, kw = bits.shape
    out = torch.zeros(m, kw * 32, dtype=torch.float64)
    for r in range(m):
        for w in range(kw):
            word = int(bits[r, w]) & 0xFFFFFFFF
            rank = 0
            for s in range(32):
                if word >> s & 1:
                    out[r, 32 * w + s] = float(values[int(offsets[r, w]) + rank])
                    rank += 1
    return out


@pytest.mark.parametrize("m, k, sparsity", [(37, 300, 0.7), (5, 33, 0.0), (64, 1000, 0.95), (3, 256, 0.5)])
def test_bitmap_round_trip(m, k, sparsity):
    a = sgk.CSRMatrix.random(m, k, sparsity, generator=gen(200))
    bits, offsets = a.topology.bitmap
    assert bits.dtype == offsets.dtype == torch.int32
    assert bits.shape == offsets.shape == (m, -(-k // 256) * 8)
    dense = _decode(bits, offsets, a.values)
    torch.testing.assert_close(dense[:, :k], a.to_dense().double())
    assert not dense[:, k:].any()  # padding words hold no bits
    assert a.topology.bitmap is a.topology.bitmap or a.topology.bitmap[0] is bits  # cached


def test_bitmap_bit_31_and_full_words():
    """A word with every bit set (bit 31 included) is -1 as int32 and decodes to 32 entries."""
    a = sgk.CSRMatrix.from_dense(torch.arange(1.0, 65.0).reshape(1, 64))
    bits, offsets = a.topology.bitmap
    assert bits[0, 0] == -1 and bits[0, 1] == -1 and offsets[0, 1] == 32
    torch.testing.assert_close(_decode(bits, offsets, a.values)[:, :64], a.to_dense().double())


def test_bitmap_not_built_where_it_does_not_pay_or_cannot():
    assert sgk.CSRMatrix.random(64, 4096, 0.99, generator=gen(201)).topology.bitmap is None  # density < 1/64
    assert sgk.CSRMatrix.random(0, 64, 0.5, generator=gen(201)).topology.bitmap is None
    assert sgk.CSRMatrix.random(8, 64, 1.0, generator=gen(201)).topology.bitmap is None  # nnz = 0
    # columns not increasing within a row (an unvalidated topology): refused, not decoded wrongly
    unsorted = Topology(torch.tensor([0, 3], dtype=torch.int32), torch.tensor([5, 2, 9], dtype=torch.int32), (1, 16))
    assert unsorted.bitmap is None
    duplicate = Topology(torch.tensor([0, 2], dtype=torch.int32), torch.tensor([4, 4], dtype=torch.int32), (1, 16))
    assert duplicate.bitmap is None


def _bitmap_configs(kmod, n, dtype=torch.float16):
    cands = list(kmod.bitmap_candidates(n, dtype))
    # and the launcher's forced splits: none, and one that leaves ranges of different lengths
    cands += [kmod.SpmmConfig(64, 64, cands[0].block_n, 4, 2, "bitmap", 1), kmod.SpmmConfig(64, 64, cands[0].block_n, 4, 2, "bitmap", 3)]
    # the register-prefetched loop with one, two and more K steps a program (its masks past the end)
    cands += [kmod.SpmmConfig(64, 64, cands[0].block_n, 4, 2, "bitmap", s, prefetch=True) for s in (1, 2, 5)]
    return cands


@pytest.mark.parametrize("n, dtype", [(1, torch.float16), (8, torch.float16), (40, torch.float16), (64, torch.float16),
                                      (130, torch.float16), (300, torch.float16), (24, torch.float32),
                                      (200, torch.float32), (16, torch.bfloat16), (130, torch.bfloat16)])
def test_bitmap_kernel_every_config(kernel_device, n, dtype):
    """Every bitmap configuration: m not a multiple of BLOCK_M, k not a multiple of BLOCK_K (and
    of 32), n not a multiple of BLOCK_N (two and more column tiles at N > 64), empty rows, one
    full row, bias and ReLU fused (or applied after a split), against float64; fp32 through the
    three-TF32 products."""
    from sgk.kernels import spmm as kmod

    g = gen(202)
    lengths = [0, 150, 3, 299, 0, 40, 77, 1] * 9 + [12]  # m = 73, k = 299: row 3 is full
    a = csr_from_lengths(lengths, 299, g, dtype=dtype, device=kernel_device)
    b = randn(299, n, g=g, dtype=dtype, device=kernel_device)
    bias = randn(73, g=g, dtype=dtype, device=kernel_device)
    expected = a.to_dense().double() @ b.double() + bias.double()[:, None]
    expected = expected.clamp_min(0)
    t = a.topology
    assert t.bitmap is not None
    for cfg in _bitmap_configs(kmod, n, dtype):
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, True, config=cfg, bitmap=t.bitmap)
        assert c.shape == (73, n) and c.dtype == dtype
        assert_close(c, expected, dtype, 299, slack=bf16_slack(dtype), msg=f"config {cfg}:")


def test_dot_precision_widens_bf16_only_off_the_gpu():
    """The kernels' tl.dot precision: fp32 as asked, fp16 on the tensor cores, bf16 widened to fp32
    only for CPU tensors (the interpreter), which is where bf16 tl.dot goes wrong."""
    from sgk.kernels._common import UPCAST, dot_precision

    assert dot_precision(torch.zeros(1), "tf32x3") == "tf32x3"
    assert dot_precision(torch.zeros(1, dtype=torch.float16), "tf32") == "ieee"
    assert dot_precision(torch.zeros(1, dtype=torch.bfloat16), "tf32") == UPCAST
    if torch.cuda.is_available():
        assert dot_precision(torch.zeros(1, dtype=torch.bfloat16, device="cuda"), "tf32") == "ieee"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=["fp16", "bf16", "fp32"])
def test_densify_form(kernel_device, dtype, monkeypatch):
    """The densify form (A decoded into a dense scratch, then a dense product; fp32: A split into
    TF32 heads and tails, three TF32 products in sgk's own kernel): m and k not multiples of its
    tile, empty rows, one full row, with and without bias and ReLU, batched values against one B
    and one set of values against a batch of B, against float64."""
    from sgk.kernels import spmm as kmod

    g = gen(225)
    lengths = [0, 150, 3, 299, 0, 40, 77, 1] * 9 + [12]  # m = 73, k = 299: row 3 is full
    a = csr_from_lengths(lengths, 299, g, dtype=dtype, device=kernel_device)
    t = a.topology
    b = randn(299, 130, g=g, dtype=dtype, device=kernel_device)
    bias = randn(73, g=g, dtype=dtype, device=kernel_device)
    dense = a.to_dense().double()
    slack = bf16_slack(dtype)
    c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=kmod.DENSIFY, bitmap=t.bitmap)
    assert c.shape == (73, 130) and c.dtype == dtype
    assert_close(c, dense @ b.double(), dtype, 299, slack=slack)
    for bi, relu in ((bias, False), (None, True), (bias, True)):
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bi, relu, config=kmod.DENSIFY,
                      bitmap=t.bitmap)
        want = dense @ b.double() + (bi.double()[:, None] if bi is not None else 0)
        assert_close(c, want.clamp_min(0) if relu else want, dtype, 299, slack=slack, msg=f"bias {bi is not None} relu {relu}:")
    # another output dtype (a forced configuration: the product is rounded to b's dtype first; fp32's
    # kernel stores its fp32 sums in the output dtype)
    out_dtype = torch.bfloat16 if dtype == torch.float32 else torch.float32
    c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, out_dtype=out_dtype,
                  config=kmod.DENSIFY, bitmap=t.bitmap)
    assert c.dtype == out_dtype
    assert_close(c, dense @ b.double(), torch.bfloat16 if dtype == torch.float32 else dtype, 299, slack=slack)
    if dtype == torch.float32:  # a B of any strides (the kernel reads both)
        bt = randn(130, 299, g=g, device=kernel_device).t()
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, bt, config=kmod.DENSIFY, bitmap=t.bitmap)
        assert_close(c, dense @ bt.double(), dtype, 299)
        # both product tiles (the launcher picks the small one on a GPU where the grid is small)
        other = kmod.DENSIFY_X3_SMALL_TILE if kernel_device == "cpu" else kmod.DENSIFY_X3_TILE
        monkeypatch.setattr(kmod, "_x3_tile", lambda m, n, batch, device: other)
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, True, config=kmod.DENSIFY,
                      bitmap=t.bitmap)
        assert_close(c, (dense @ b.double() + bias.double()[:, None]).clamp_min(0), dtype, 299)
        monkeypatch.undo()
    # batched values with a batched bias (the product's epilogue over the batch)
    vals = torch.stack([a.values, -a.values])
    bias2 = randn(2, 73, g=g, dtype=dtype, device=kernel_device)
    c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, vals, b[None], bias2, True, config=kmod.DENSIFY,
                  bitmap=t.bitmap)
    want = (torch.stack([dense, -dense]) @ b.double() + bias2.double()[..., None]).clamp_min(0)
    assert_close(c, want, dtype, 299, slack=slack)
    vals = torch.stack([a.values, -a.values, 2 * a.values])
    bb = randn(3, 299, 130, g=g, dtype=dtype, device=kernel_device)
    for v, bm, want in ((vals, b[None], torch.stack([dense, -dense, 2 * dense]) @ b.double()),
                        (a.values[None], bb, dense @ bb.double())):  # (the launcher's batched shapes)
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, v, bm, config=kmod.DENSIFY, bitmap=t.bitmap)
        assert c.shape == (3, 73, 130)
        assert_close(c, want, dtype, 299, slack=slack)
    with pytest.raises(ValueError, match=r"spmm\(\): a densify configuration needs the topology's bitmap"):
        kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=kmod.DENSIFY)


def test_tf32_split(kernel_device):
    """The fp32 densify form's split, alone (the interpreter's products ignore TF32, so only this
    test sees it on the CPU): heads and tails have their low 13 bits zero, the head is x rounded to
    nearest, x = head + tail to 2**-22 |x|; NaNs (the GPU's 0x7FFFFFFF as well as torch's) stay
    NaN, inf gives an inf head, and the largest finite values stay finite."""
    import triton
    import triton.language as tl

    from sgk.kernels import spmm as kmod

    global _TF32_SPLIT  # a JIT function calls what its module's globals name
    _TF32_SPLIT = kmod._tf32_split

    @triton.jit
    def split_kernel(x_ptr, hi_ptr, lo_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n)
        hi, lo = _TF32_SPLIT(x)
        tl.store(hi_ptr + offs, hi, mask=offs < n)
        tl.store(lo_ptr + offs, lo, mask=offs < n)

    g = gen(230)
    finite = torch.cat([randn(500, g=g), randn(200, g=g) * 1e30, randn(200, g=g) * 1e-30,
                        torch.tensor([0.0, -0.0, 1.0, -1.0, 3.4028234e38, -3.4028234e38, 3.4019e38, 1e-45])])
    special = torch.tensor([0x7FFFFFFF, 0x7FC00000, -1, 0x7F800000, -8388608], dtype=torch.int32).view(torch.float32)
    x = torch.cat([finite, special]).to(kernel_device)
    hi, lo = torch.empty_like(x), torch.empty_like(x)
    split_kernel[(triton.cdiv(x.numel(), 256),)](x, hi, lo, x.numel(), BLOCK=256)
    hi, lo, x = hi.cpu(), lo.cpu(), x.cpu()
    nf = finite.numel()
    fh, fl = hi[:nf], lo[:nf]
    assert torch.isfinite(fh).all() and torch.isfinite(fl).all()
    assert not (fh.view(torch.int32) & 0x1FFF).any() and not (fl.view(torch.int32) & 0x1FFF).any()
    err = (finite.double() - fh.double() - fl.double()).abs()
    # 2**-22 where rounded, 2**-21 where truncated; below TF32's finest subnormal step (2**-136) nothing is kept
    assert (err <= 2.0**-21 * finite.double().abs() + 2.0**-136).all()
    small = finite.abs() < 3e38  # rounded to nearest: the head within half a TF32 unit
    assert ((finite.double() - fh.double()).abs()[small] <= 2.0**-11 * finite.double().abs()[small] + 2.0**-136).all()
    sh = hi[nf:]
    assert sh[:3].isnan().all() and sh[3] == float("inf") and sh[4] == float("-inf")
    assert lo[nf:].isnan().all()


def test_densify_offered_where_allowed(kernel_device, monkeypatch):
    """The tuner times the densify form for fp16/bf16 at N >= DENSIFY_MIN_N with a scratch within
    DENSIFY_MAX_BYTES, beside the bitmap candidates, and never otherwise: not at narrow N, not
    without the bitmap, not for method="bitmap", not under deterministic algorithms, not for
    another output dtype, not past the scratch limit (which counts the values' batch: two problems
    of one batch size, one with batched values, are not served by one choice)."""
    from sgk.kernels import spmm as kmod

    assert kmod.densify_allowed(512, 512, 2048, 1, torch.bfloat16)
    assert not kmod.densify_allowed(512, 512, 64, 1, torch.bfloat16)  # narrow N
    assert kmod.densify_allowed(512, 512, 2048, 1, torch.float32)
    assert not kmod.densify_allowed(512, 512, 64, 1, torch.float32)
    assert not kmod.densify_allowed(8192, 8192, 2048, 1, torch.float16)  # 128 MiB of scratch
    assert kmod.densify_allowed(4096, 4096, 2048, 1, torch.float16)  # 32 MiB
    assert not kmod.densify_allowed(4096, 4096, 2048, 1, torch.float32)  # heads and tails: 128 MiB
    assert not kmod.densify_allowed(512, 512, 2048, 1, torch.float64)
    widest = kmod.MAX_GRID_YZ * kmod.DENSIFY_X3_TILE[1]  # the fp32 product's column tiles in one launch
    assert kmod.densify_allowed(4, 32, widest, 1, torch.float32)
    assert not kmod.densify_allowed(4, 32, widest + 1, 1, torch.float32)
    assert kmod.densify_allowed(4, 32, widest + 1, 1, torch.float16)  # (cuBLAS's product: no such limit)
    deepest = kmod.MAX_GRID_YZ * kmod.DENSIFY.block_k  # the decode's column tiles in one launch
    for dtype in (torch.float16, torch.float32):  # (the tuner's key caps k: a cached choice must still launch)
        assert kmod.densify_allowed(1, deepest, 128, 1, dtype)
        assert not kmod.densify_allowed(1, deepest + 1, 128, 1, dtype)
    offered = []
    monkeypatch.setattr(kmod._TUNER, "choose", lambda key, cands, run, device: offered.append(list(cands)) or cands[0])
    monkeypatch.setattr(kmod, "_launch", lambda *args, **kwargs: None)  # the offers only: nothing runs
    monkeypatch.setattr(kmod, "_CHOSEN", {})  # forced choices must not outlive the test
    g = gen(226)
    a = sgk.CSRMatrix.random(40, 128, 0.7, dtype=torch.float16, generator=g).to(kernel_device)
    t = a.topology
    for n, want in ((130, True), (16, False)):
        b = randn(128, n, g=g, dtype=torch.float16, device=kernel_device)
        kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bitmap=t.bitmap)
        assert (kmod.DENSIFY in offered[-1]) == want
    b = randn(128, 130, g=g, dtype=torch.float16, device=kernel_device)
    args = (t.row_offsets, t.column_indices, t.row_swizzle)
    kmod.spmm(*args, a.values, b)
    assert kmod.DENSIFY not in offered[-1]  # no bitmap: no dense tiles at all
    kmod.spmm(*args, a.values, b, bitmap=t.bitmap, bitmap_only=True)
    assert kmod.DENSIFY not in offered[-1]  # method="bitmap": the dense-tile kernel only
    kmod.spmm(*args, a.values, b, bitmap=t.bitmap, out_dtype=torch.float32)
    assert kmod.DENSIFY not in offered[-1]
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        kmod.spmm(*args, a.values, b, bitmap=t.bitmap)
        assert kmod.DENSIFY not in offered[-1]
    finally:
        torch.use_deterministic_algorithms(False)
    # the limit counts the values' batch: values (1, nnz) with 4 B's fit, values (4, nnz) do not
    monkeypatch.setattr(kmod, "DENSIFY_MAX_BYTES", 40 * 128 * 2 * 2)
    b4 = randn(4, 128, 130, g=g, dtype=torch.float16, device=kernel_device)
    before = len(offered)
    kmod.spmm(*args, a.values[None], b4, bitmap=t.bitmap)
    assert kmod.DENSIFY in offered[-1]
    kmod.spmm(*args, a.values.expand(4, -1).contiguous(), b[None], bitmap=t.bitmap)
    assert len(offered) == before + 2 and kmod.DENSIFY not in offered[-1]
    monkeypatch.undo()  # (the poisoned allocations too: nothing runs)
    monkeypatch.setattr(kmod._TUNER, "choose", lambda key, cands, run, device: offered.append(list(cands)) or cands[0])
    monkeypatch.setattr(kmod, "_launch", lambda *args, **kwargs: None)
    monkeypatch.setattr(kmod, "_CHOSEN", {})
    # fp32: the densify form alone beside the gathers (no bitmap-kernel candidates), under
    # deterministic algorithms too (its product is sgk's own kernel, no atomics)
    a32 = sgk.CSRMatrix.random(40, 128, 0.7, generator=g).to(kernel_device)
    t32 = a32.topology
    args = (t32.row_offsets, t32.column_indices, t32.row_swizzle)
    b32 = randn(128, 130, g=g, device=kernel_device)
    for deterministic in (False, True):
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        try:
            kmod.spmm(*args, a32.values, b32, bitmap=t32.bitmap)
        finally:
            torch.use_deterministic_algorithms(False)
        assert kmod.DENSIFY in offered[-1] and not any(c.kind == "bitmap" for c in offered[-1])
    kmod.spmm(*args, a32.values, b32[:, :16].contiguous(), bitmap=t32.bitmap)
    assert kmod.DENSIFY not in offered[-1]  # narrow N


def test_bitmap_kernel_batched(kernel_device):
    """A batch of values over one pattern and a batch of B, with batched bias, split and not."""
    from sgk.kernels import spmm as kmod

    dtype = torch.float16
    g = gen(203)
    a = csr_from_lengths([5, 0, 30, 64, 2, 17], 64, g, batch=(3,), dtype=dtype, device=kernel_device)
    b = randn(3, 64, 16, g=g, dtype=dtype, device=kernel_device)
    bias = randn(3, 6, g=g, dtype=dtype, device=kernel_device)
    expected = a.to_dense().double() @ b.double() + bias.double()[..., None]
    t = a.topology
    for split, prefetch in ((1, False), (2, False), (1, True), (2, True)):
        cfg = kmod.SpmmConfig(64, 32, 16, 4, 1, "bitmap", split, prefetch=prefetch)
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, False, config=cfg, bitmap=t.bitmap)
        assert_close(c, expected, dtype, 64, msg=f"split {split} prefetch {prefetch}:")


@pytest.mark.parametrize("layout", ["transposed", "column-slice"])
def test_bitmap_kernel_noncontiguous_b(kernel_device, layout):
    """B through arbitrary strides (a transposed view, a column slice), odd N."""
    from sgk.kernels import spmm as kmod

    dtype = torch.float16
    g = gen(210)
    a = csr_from_lengths([3, 0, 60, 17, 99, 1, 45], 100, g, dtype=dtype, device=kernel_device)
    if layout == "transposed":
        b = randn(13, 100, g=g, dtype=dtype, device=kernel_device).T
    else:
        b = randn(100, 40, g=g, dtype=dtype, device=kernel_device)[:, 5:18]
    assert not b.is_contiguous() and b.shape == (100, 13)
    t = a.topology
    expected = a.to_dense().double() @ b.double()
    for split in (1, 2):
        cfg = kmod.SpmmConfig(64, 64, 16, 4, 1, "bitmap", split)
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg, bitmap=t.bitmap)
        assert_close(c, expected, dtype, 100, msg=f"split {split}:")


def test_batch_split_over_launches(kernel_device, monkeypatch):
    """Batches beyond the grid limit go out in several launches (the limit lowered to 2 here), for
    the gather and the bitmap kernels alike, with batched values, B and bias."""
    from sgk.kernels import spmm as kmod

    monkeypatch.setattr(kmod, "MAX_GRID_YZ", 2)
    dtype = torch.float16
    g = gen(217)
    a = csr_from_lengths([4, 0, 40, 9, 17, 1, 30, 2, 8], 40, g, batch=(5,), dtype=dtype, device=kernel_device)
    b = randn(5, 40, 16, g=g, dtype=dtype, device=kernel_device)
    bias = randn(5, 9, g=g, dtype=dtype, device=kernel_device)
    expected = a.to_dense().double() @ b.double() + bias.double()[..., None]
    t = a.topology
    for cfg in (kmod.SpmmConfig(4, 8, 16, 1, 1, "1d"), kmod.SpmmConfig(64, 64, 16, 4, 1, "bitmap", 1),
                kmod.SpmmConfig(64, 32, 16, 4, 1, "bitmap", 2)):
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, False, config=cfg, bitmap=t.bitmap)
        assert_close(c, expected, dtype, 40, msg=f"config {cfg}:")


def test_bitmap_configuration_needs_the_bitmap():
    from sgk.kernels import spmm as kmod

    a = sgk.CSRMatrix.random(8, 64, 0.5, dtype=torch.float16, generator=gen(204))
    cfg = kmod.bitmap_candidates(16)[0]
    with pytest.raises(ValueError, match="needs the topology's bitmap"):
        kmod.spmm(a.row_offsets, a.column_indices, a.row_swizzle, a.values, torch.randn(64, 16).half(), config=cfg)


def test_bitmap_splits():
    from sgk.kernels import spmm as kmod

    cfg = kmod.bitmap_candidates(16)[0]  # 64 × 128 tiles, split chosen by the launcher
    assert kmod.bitmap_splits(cfg, 4096, 16, 14336, 1) > 1  # 64 row tiles: K split to fill the SMs
    assert kmod.bitmap_splits(cfg, 4096, 16, 256, 1) == 1  # too few K tiles to split
    assert kmod.bitmap_splits(cfg, 65536, 16, 8192, 1) == 1  # enough row tiles already
    forced = kmod.SpmmConfig(64, 128, 16, 4, 3, "bitmap", 3)
    assert kmod.bitmap_splits(forced, 4096, 16, 1024, 1) == 3  # 8 tiles in ranges of 3: 3 ranges
    assert kmod.bitmap_splits(kmod.SpmmConfig(64, 128, 16, 4, 3, "bitmap", 7), 64, 16, 1024, 1) == 4  # no empty range
    torch.use_deterministic_algorithms(True)
    try:
        assert kmod.bitmap_splits(cfg, 4096, 16, 14336, 1) > 1  # the split sums in a fixed order: reproducible
    finally:
        torch.use_deterministic_algorithms(False)


def test_bitmap_split_is_one_reproducible_launch(kernel_device, monkeypatch):
    """A split launch: the tile's last program sums the partials in split order, so two runs agree
    bit for bit; one kernel launch, nothing else (no zeroed buffer, no copy); the arrival counts
    are back at zero afterwards, so the next launch (here a larger one, which grows the buffers)
    starts clean."""
    from sgk.kernels import spmm as kmod

    dtype = torch.float16
    g = gen(218)
    a = csr_from_lengths([7, 0, 250, 33, 90, 1, 180], 260, g, dtype=dtype, device=kernel_device)
    b = randn(260, 24, g=g, dtype=dtype, device=kernel_device)
    bias = randn(7, g=g, dtype=dtype, device=kernel_device)
    expected = (a.to_dense().double() @ b.double() + bias.double()[:, None]).clamp_min(0)
    t = a.topology
    launched = []
    real = kmod.launch
    monkeypatch.setattr(kmod, "launch", lambda kernel, *args, **kw: (launched.append(kernel), real(kernel, *args, **kw)))
    cfg = kmod.SpmmConfig(64, 32, 16, 4, 1, "bitmap", 3)
    c1 = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, True, config=cfg, bitmap=t.bitmap)
    assert launched == [kmod._spmm_bitmap_kernel]
    c2 = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, True, config=cfg, bitmap=t.bitmap)
    assert torch.equal(c1, c2)
    assert_close(c1, expected, dtype, 260)
    for _, arrivals in kmod._SPLIT_BUFFERS.values():
        assert not arrivals.any()
    wide = randn(260, 64, g=g, dtype=dtype, device=kernel_device)
    big = kmod.SpmmConfig(64, 32, 32, 4, 1, "bitmap", 5)
    c3 = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, wide, None, False, config=big, bitmap=t.bitmap)
    assert_close(c3, a.to_dense().double() @ wide.double(), dtype, 260)
    for _, arrivals in kmod._SPLIT_BUFFERS.values():
        assert not arrivals.any()


def test_spmm_offers_the_bitmap_on_the_inference_path_only(kernel_device):
    """sgk.spmm builds the bitmap for fp16/bf16 inference calls (any N), never while autograd
    records (training keeps its memory) and never for fp32."""
    g = gen(205)
    a = sgk.CSRMatrix.random(40, 128, 0.7, dtype=torch.float16, generator=g).to(kernel_device)
    b = randn(128, 8, g=g, dtype=torch.float16, device=kernel_device).requires_grad_()
    out = sgk.spmm(a, b, method="triton")
    assert "bitmap" not in a.topology._cache
    out.float().sum().backward()
    assert "bitmap" not in a.topology._cache
    with torch.no_grad():
        a32 = a.to(dtype=torch.float32)
        sgk.spmm(a32, randn(128, 8, g=g, device=kernel_device), method="triton")
        assert "bitmap" not in a32.topology._cache
        b32 = randn(128, 65, g=g, device=kernel_device)
        c32 = sgk.spmm(a32, b32, method="triton")
        assert "bitmap" not in a32.topology._cache  # fp32: the three-TF32 form is only forced, never offered
        b_wide = randn(128, 130, g=g, dtype=torch.float16, device=kernel_device)
        wide = sgk.spmm(a, b_wide, method="triton")
        assert "bitmap" in a.topology._cache
        del a.topology._cache["bitmap"]
        c = sgk.spmm(a, b.detach(), method="triton")
    assert "bitmap" in a.topology._cache
    assert_close(c, a.to_dense().double() @ b.detach().double(), torch.float16, 128)
    assert_close(c32, a32.to_dense().double() @ b32.double(), torch.float32, 128)
    assert_close(wide, a.to_dense().double() @ b_wide.double(), torch.float16, 128)


def test_method_forces_a_path(kernel_device):
    """method='bitmap' runs the dense-tile kernel only (also under autograd, whose gradients use
    the gather kernels); method='csr' never builds the bitmap."""
    from sgk.kernels import spmm as kmod

    g = gen(208)
    a = sgk.CSRMatrix.random(70, 200, 0.6, dtype=torch.float16, generator=g).to(kernel_device)
    b = randn(200, 24, g=g, dtype=torch.float16, device=kernel_device)
    expected = a.to_dense().double() @ b.double()
    c = sgk.spmm(a, b, method="csr")
    assert kmod.last_config.kind != "bitmap" and "bitmap" not in a.topology._cache
    assert_close(c, expected, torch.float16, 200)
    c = sgk.spmm(a, b, method="bitmap")
    assert kmod.last_config.kind == "bitmap"
    assert_close(c, expected, torch.float16, 200)
    values = a.values.detach().clone().requires_grad_()
    bb = b.detach().clone().requires_grad_()
    out = sgk.spmm(a.with_values(values), bb, method="bitmap")
    assert kmod.last_config.kind == "bitmap"
    out.float().sum().backward()
    assert kmod.last_config.kind != "bitmap"  # dB = Aᵀ·dC ran on the gather kernels
    ones = torch.ones(70, 24, dtype=torch.float64, device=kernel_device)
    assert_close(bb.grad, a.to_dense().double().T @ ones, torch.float16, 70)
    dense_grad = ones @ b.double().T  # d(values) = (dC · Bᵀ) at a's pattern
    assert_close(values.grad, dense_grad[a.topology.row_indices.long(), a.column_indices.long()], torch.float16, 24)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda a, b: sgk.spmm(sgk.CSRMatrix.random(8, 4096, 0.999, dtype=torch.float16, generator=gen(1)),
                               torch.ones(4096, 4, dtype=torch.float16), method="bitmap"), ValueError, "bitmap form"),
        (lambda a, b: sgk.spmm(sgk.BSRMatrix.random(64, 64, 16, 0.5), torch.ones(64, 4), method="csr"), ValueError,
         "is a CSRMatrix path"),
        (lambda a, b: sgk.spmm(a, b, method="dense"), ValueError, r"method must be one of \('auto', 'triton', 'reference', "
         "'csr', 'bitmap'\\)"),
    ],
    ids=["too-sparse", "bsr", "unknown"],
)
def test_method_errors(call, exc, match):
    a = sgk.CSRMatrix.random(8, 64, 0.5, dtype=torch.float16, generator=gen(209))
    with pytest.raises(exc, match=match):
        call(a, torch.ones(64, 4, dtype=torch.float16))


def test_forced_path_on_cpu_without_interpreter_names_the_method(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    a = sgk.CSRMatrix.random(8, 64, 0.5, dtype=torch.float16, generator=gen(211))
    for method in ("bitmap", "csr"):
        with pytest.raises(ValueError, match=rf"spmm\(\): method='{method}' needs CUDA tensors"):
            sgk.spmm(a, torch.ones(64, 4, dtype=torch.float16), method=method)


@pytest.mark.parametrize("m, k", [(0, 64), (6, 0)])
def test_bitmap_method_on_empty_shapes(kernel_device, m, k):
    a = sgk.CSRMatrix.random(m, k, 0.5, dtype=torch.float16, generator=gen(212)).to(kernel_device)
    b = torch.ones(k, 4, dtype=torch.float16, device=kernel_device)
    c = sgk.spmm(a, b, method="bitmap")
    assert c.shape == (m, 4) and not c.any()


def test_bitmap_configuration_shape_is_checked(kernel_device):
    from sgk.kernels import spmm as kmod

    a = sgk.CSRMatrix.random(8, 600, 0.5, dtype=torch.float16, generator=gen(213)).to(kernel_device)
    t = a.topology
    b = torch.ones(600, 16, dtype=torch.float16, device=kernel_device)
    for cfg in (kmod.SpmmConfig(64, 512, 16, 4, 1, "bitmap", 1), kmod.SpmmConfig(64, 48, 16, 4, 1, "bitmap", 1)):
        with pytest.raises(ValueError, match="BLOCK_K in"):
            kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg, bitmap=t.bitmap)


def test_auto_path_offers_the_bitmap_from_density_one_32nd(kernel_device):
    """Between densities 1/64 and 1/32 the bitmap exists (method='bitmap' can use it) but the
    automatic choice does not build it: it would outweigh the values several times."""
    g = gen(214)
    sparse = sgk.CSRMatrix.random(16, 2048, 0.975, dtype=torch.float16, generator=g).to(kernel_device)  # density 1/40
    b = randn(2048, 8, g=g, dtype=torch.float16, device=kernel_device)
    with torch.no_grad():
        sgk.spmm(sparse, b, method="triton")
    assert "bitmap" not in sparse.topology._cache
    assert sparse.topology.bitmap is not None
    assert sgk.CSRMatrix.random(4, 64, 0.5, generator=g).topology.prepare(bitmap=True)._cache["bitmap"] is not None


def test_compile_fullgraph_with_a_prepared_bitmap():
    """torch.compile traces method='bitmap' once the bitmap exists (building it syncs: prepare first)."""
    torch._dynamo.reset()
    a = sgk.CSRMatrix.random(40, 128, 0.6, dtype=torch.float16, generator=gen(215))
    a.topology.prepare(bitmap=True)
    b = randn(128, 8, g=gen(216), dtype=torch.float16)
    out = torch.compile(lambda a, b: sgk.spmm(a, b, method="bitmap"), backend="aot_eager", fullgraph=True)(a, b)
    assert_close(out, a.to_dense().double() @ b.double(), torch.float16, 128)


# -- GPU -------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=["bf16", "fp16", "fp32"])
def test_gpu_bitmap_every_config(dtype):
    """Every bitmap configuration (and forced splits) on the GPU, with bias and ReLU, N 1-300
    (fp32: the three-TF32 products, held to fp32's tolerance)."""
    from sgk.kernels import spmm as kmod

    g = gen(206)
    a = sgk.CSRMatrix.random(1000, 700, 0.8, distribution="skewed", row_cv=0.8, dtype=dtype, generator=g).to("cuda")
    bias = randn(1000, g=g, dtype=dtype, device="cuda")
    t = a.topology
    for n in ((1, 8, 16, 48, 64, 100, 300) if dtype != torch.float32 else (24, 200)):
        b = randn(700, n, g=g, dtype=dtype, device="cuda")
        expected = (a.to_dense().double() @ b.double() + bias.double()[:, None]).clamp_min(0)
        for cfg in _bitmap_configs(kmod, n, dtype):
            c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, True, config=cfg,
                          bitmap=t.bitmap)
            assert_close(c, expected, dtype, t.max_row_length, msg=f"n={n} config {cfg}:")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("method", ["auto", "bitmap"])
def test_gpu_wide_n(method, dtype):
    """sgk.spmm at a DLMC Transformer shape (512×2048 at 70%, N = 2048), against float64: ``auto``
    (in bf16 the tuner times the bitmap kernel beside the gather kernels; the second call, with a
    new B, goes through the plan: its recorded launch where the choice is unsplit) and ``bitmap``
    (fp32: three TF32 products)."""
    g = gen(221)
    a = sgk.CSRMatrix.random(512, 2048, 0.7, dtype=dtype, generator=g).to("cuda")
    dense = a.to_dense().double()
    for _ in range(2):
        b = randn(2048, 2048, g=g, dtype=dtype, device="cuda")
        with torch.no_grad():
            c = sgk.spmm(a, b, method=method)
        assert_close(c, dense @ b.double(), dtype, a.topology.max_row_length)


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["auto", "bitmap"])
@pytest.mark.parametrize("n", [1, 16, 64])
def test_gpu_decode_shape(n, method):
    """sgk.spmm at a decode shape (``auto``: the tuner may pick the bitmap kernel), against float64."""
    g = gen(207)
    a = sgk.CSRMatrix.random(4096, 4096, 0.8, dtype=torch.bfloat16, generator=g).to("cuda")
    b = randn(4096, n, g=g, dtype=torch.bfloat16, device="cuda")
    with torch.no_grad():
        c = sgk.spmm(a, b, method=method)
    assert_close(c, a.to_dense().double() @ b.double(), torch.bfloat16, a.topology.max_row_length)


def test_fp32_training_db_follows_method(kernel_device):
    """fp32 training's dB = Aᵀ·dC is offered the densify form (with the transposed pattern's
    bitmap built) under the automatic path only: a forced method="csr" keeps the gathers for dB
    and builds no bitmap. The gradient is right either way."""
    from sgk.kernels import spmm as kmod

    g = gen(233)
    for method, densify in (("csr", False), ("triton", True)):
        a = sgk.CSRMatrix.random(40, 64, 0.5, generator=g).to(kernel_device)
        b = randn(64, 130, g=g, device=kernel_device).requires_grad_()
        dc = randn(40, 130, g=g, device=kernel_device)
        with _offered_candidates() as offered:
            sgk.spmm(a, b, method=method).backward(dc)
        assert offered and kmod.DENSIFY not in offered[0]  # the forward: the gathers alone
        assert (kmod.DENSIFY in offered[-1]) == densify, method
        assert ("bitmap" in a.topology.transpose()[0]._cache) == densify, method
        assert_close(b.grad, a.to_dense().double().t() @ dc.double(), torch.float32, 40)


def test_bitmap_built_for_the_kernels_batch(kernel_device, monkeypatch):
    """The ops layer builds the bitmap for the densify form only where the kernels will offer it:
    it counts the values' batch as the kernels see it (one entry, or the full broadcast batch),
    not the values' own batch."""
    from sgk.kernels import spmm as kmod
    import importlib

    ops_spmm = importlib.import_module("sgk.ops.spmm")  # the module (sgk.ops.spmm is also the function's name)

    g = gen(234)
    a = sgk.CSRMatrix.random(64, 64, 0.5, generator=g).to(kernel_device)
    monkeypatch.setattr(kmod, "DENSIFY_MAX_BYTES", 8 * 64 * 64 * 2)  # fp32: a values batch of 2 fits, 6 does not
    b = randn(3, 2, 64, 130, g=g, device=kernel_device)
    values2 = torch.stack([a.values, -a.values])
    t = a.topology
    _, bitmap = ops_spmm._kernel_tables(t, b, "triton", "auto", values2, (3, 2))  # the kernels see 6 entries
    assert bitmap is None and "bitmap" not in t._cache
    _, bitmap = ops_spmm._kernel_tables(t, b, "triton", "auto", a.values, (3, 2))  # one entry, stride 0
    assert bitmap is not None


@contextlib.contextmanager
def _offered_candidates():
    """Collect the candidate lists the SpMM tuner is offered (it still chooses as usual) inside
    the block, the chosen-configuration cache cleared first."""
    from sgk.kernels import spmm as kmod

    offered = []
    real_choose = kmod._TUNER.choose
    kmod._CHOSEN.clear()
    try:
        kmod._TUNER.choose = lambda key, cands, run, device: offered.append(list(cands)) or real_choose(key, cands, run,
                                                                                                          device)
        yield offered
    finally:
        del kmod._TUNER.choose  # the class's method again


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
@pytest.mark.parametrize("m, k, n", [(512, 512, 2048), (1000, 700, 300)])
def test_gpu_densify_form(m, k, n, dtype):
    """The densify form on the GPU (its decode kernel compiled; cuBLAS over the scratch in bf16,
    the three-TF32 product in fp32, held to fp32's tolerance), with bias and ReLU and batched
    values, and the auto path that may choose it, against float64."""
    from sgk.kernels import spmm as kmod

    g = gen(227)
    a = sgk.CSRMatrix.random(m, k, 0.7, distribution="skewed", row_cv=0.8, dtype=dtype, generator=g).to("cuda")
    t = a.topology
    t.prepare(bitmap=True)
    dense = a.to_dense().double()
    b = randn(k, n, g=g, dtype=dtype, device="cuda")
    bias = randn(m, g=g, dtype=dtype, device="cuda")
    c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, bias, True, config=kmod.DENSIFY,
                  bitmap=t.bitmap)
    assert_close(c, (dense @ b.double() + bias.double()[:, None]).clamp_min(0), dtype, t.max_row_length)
    vals = torch.stack([a.values, -a.values])
    c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, vals, b[None], config=kmod.DENSIFY, bitmap=t.bitmap)
    assert_close(c, torch.stack([dense, -dense]) @ b.double(), dtype, t.max_row_length)
    if dtype == torch.float32:  # a transposed B, and large values (1e20: the split keeps the exponent)
        bt = randn(n, k, g=g, device="cuda").t() * 1e20
        c = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, bt, config=kmod.DENSIFY, bitmap=t.bitmap)
        assert_close(c / 1e20, dense @ (bt.double() / 1e20), dtype, t.max_row_length)
    with _offered_candidates() as offered:
        with torch.no_grad():
            for _ in range(2):
                b = randn(k, n, g=g, dtype=dtype, device="cuda")
                assert_close(sgk.spmm(a, b), dense @ b.double(), dtype, t.max_row_length)
    assert offered and all(kmod.DENSIFY in cands for cands in offered)


@pytest.mark.gpu
def test_gpu_fp32_backward_offers_densify_for_db():
    """fp32 training: dB = Aᵀ·dC may take the densify form (the tuner is offered it for the
    transposed product), and the gradients match float64; the forward stays on the gathers."""
    from sgk.kernels import spmm as kmod

    g = gen(231)
    a = sgk.CSRMatrix.random(512, 1024, 0.7, generator=g).to("cuda").requires_grad_()
    b = randn(1024, 512, g=g, device="cuda").requires_grad_()
    dc = randn(512, 512, g=g, device="cuda")
    with _offered_candidates() as offered:
        sgk.spmm(a, b).backward(dc)
    dense = a.to_dense().detach().double()
    assert_close(b.grad, dense.t() @ dc.double(), torch.float32, 512)
    want = (dc.double() @ b.detach().double().t())[a.topology.row_indices.long(), a.topology.column_indices.long()]
    assert_close(a.values.grad, want, torch.float32, 512)
    assert len(offered) >= 2 and kmod.DENSIFY not in offered[0] and kmod.DENSIFY in offered[-1]


@pytest.mark.gpu
def test_gpu_split_reproducible_and_across_streams():
    """Split launches on the GPU, where the programs of a tile really race: many tiles and splits,
    repeated, bit for bit equal and right; a second stream gets its own buffers."""
    from sgk.kernels import spmm as kmod

    g = gen(219)
    a = sgk.CSRMatrix.random(2000, 6000, 0.8, dtype=torch.bfloat16, generator=g).to("cuda")
    b = randn(6000, 32, g=g, dtype=torch.bfloat16, device="cuda")
    t = a.topology
    expected = a.to_dense().double() @ b.double()
    cfg = kmod.SpmmConfig(64, 64, 32, 4, 3, "bitmap", 7)
    first = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg, bitmap=t.bitmap)
    assert_close(first, expected, torch.bfloat16, t.max_row_length)
    for _ in range(20):
        again = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg, bitmap=t.bitmap)
        assert torch.equal(again, first)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        other = kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg, bitmap=t.bitmap)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(other, first)
    assert len({key[1] for key in kmod._SPLIT_BUFFERS}) >= 2
    torch.cuda.synchronize()
    assert all(not arrivals.any() for _, arrivals in kmod._SPLIT_BUFFERS.values())


def _forced_plan(monkeypatch, cfg, m: int, k: int, sparsity: float, g, device="cuda", dtype=torch.bfloat16):
    """An m × k matrix (bf16 unless told) on ``device`` with its bitmap, and an SpmmPlan over its
    topology whose tuner always chooses ``cfg`` (kept out of the shared exact cache); the list that
    counts full-path calls; and the real ``kernels.spmm``."""
    from sgk.kernels import spmm as kmod

    monkeypatch.setattr(kmod._TUNER, "choose", lambda key, cands, run, device: cfg)
    monkeypatch.setattr(kmod, "_CHOSEN", {})  # forced choices must not outlive the test
    full = []
    real = kmod.spmm
    monkeypatch.setattr(kmod, "spmm", lambda *args, **kw: full.append(1) or real(*args, **kw))
    a = sgk.CSRMatrix.random(m, k, sparsity, dtype=dtype, generator=g).to(device)
    t = a.topology
    t.prepare(bitmap=True)
    return a, kmod.SpmmPlan(t.row_offsets, t.column_indices, t.row_swizzle, bitmap=t.bitmap), full, real


def _split_plan(monkeypatch, m: int, k: int, g):
    """A bf16 m × k matrix at 80% on the GPU, an SpmmPlan whose tuner always chooses a bitmap
    configuration split 7 ways, and the list that counts full-path calls."""
    from sgk.kernels import spmm as kmod

    return _forced_plan(monkeypatch, kmod.SpmmConfig(64, 64, 32, 4, 3, "bitmap", 7), m, k, 0.8, g)[:3]


@pytest.mark.gpu
def test_gpu_plan_repeats_a_split_launch(monkeypatch):
    """SpmmPlan repeats a split bitmap launch with the launching stream's buffers: bit for bit
    equal and right over repeats with fresh operands, on a second stream (its own buffers, grown
    there), and inside a CUDA-graph capture (buffers from the graph's pool), the arrival counts
    left at zero."""
    from sgk.kernels import spmm as kmod

    g = gen(223)
    a, plan, full = _split_plan(monkeypatch, 2000, 6000, g)
    t = a.topology
    dense = a.to_dense().double()
    b = randn(6000, 32, g=g, dtype=torch.bfloat16, device="cuda")
    first = plan(a.values, b)
    assert plan._state is not None and plan._state[4] is not None and len(full) == 1
    assert_close(first, dense @ b.double(), torch.bfloat16, t.max_row_length)
    for _ in range(10):
        assert torch.equal(plan(a.values, b), first)
    b2 = randn(6000, 32, g=g, dtype=torch.bfloat16, device="cuda")
    assert_close(plan(a.values, b2), dense @ b2.double(), torch.bfloat16, t.max_row_length)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        other = plan(a.values, b)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(other, first) and len(full) == 1
    assert (torch.device("cuda", torch.cuda.current_device()), side.cuda_stream) in kmod._SPLIT_BUFFERS
    # two streams replaying at once, without a synchronisation between them: each its own buffers
    streams = [torch.cuda.Stream() for _ in range(2)]
    outs = []
    for s in streams:
        s.wait_stream(torch.cuda.current_stream())
    for _ in range(5):
        for s in streams:
            with torch.cuda.stream(s):
                outs.append(plan(a.values, b))
    for s in streams:
        torch.cuda.current_stream().wait_stream(s)
    assert all(torch.equal(o, first) for o in outs) and len(full) == 1
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = plan(a.values, b)
    for _ in range(3):
        b.copy_(randn(6000, 32, g=g, dtype=torch.bfloat16, device="cuda"))
        graph.replay()
        torch.cuda.synchronize()
        assert_close(out, dense @ b.double(), torch.bfloat16, t.max_row_length)
    assert len(full) == 1
    torch.cuda.synchronize()
    assert all(not arrivals.any() for _, arrivals in kmod._SPLIT_BUFFERS.values())


@pytest.mark.gpu
def test_gpu_plan_split_configuration_run_unsplit(monkeypatch):
    """A split bitmap configuration whose partial sums would exceed the buffer limit runs unsplit;
    the plan then records and repeats it as an unsplit launch (no buffers), right every time."""
    from sgk.kernels import spmm as kmod

    monkeypatch.setattr(kmod, "_MAX_PARTIALS", 1)
    g = gen(224)
    a, plan, full = _split_plan(monkeypatch, 500, 3000, g)
    t = a.topology
    dense = a.to_dense().double()
    for _ in range(4):
        b = randn(3000, 32, g=g, dtype=torch.bfloat16, device="cuda")
        assert_close(plan(a.values, b), dense @ b.double(), torch.bfloat16, t.max_row_length)
    assert plan._state is not None and plan._state[4] is None and len(full) == 1


def test_plan_records_and_repeats_a_densify_launch(kernel_device, monkeypatch):
    """SpmmPlan over a densify choice: the first call records the decode launch (values and scratch
    in its slots), later calls repeat it into a fresh scratch and run the dense product, right with
    fresh operands; a record that does not apply sends the call down the full path again. The
    record itself is faked (the interpreter makes none); the GPU test runs the real one."""
    from sgk.kernels import spmm as kmod

    class FakeRecord:  # a Prepared that runs the decode through the real launcher, into the new slots
        def __init__(self, args, constexprs, num_warps):
            self.args, self.constexprs, self.num_warps, self.ok = args, constexprs, num_warps, True
            self.width = 2
            self.runs = 0

        def run(self, tensors):
            if not self.ok:
                return False
            self.runs += 1
            args = list(self.args)
            args[2], args[3] = tensors
            m = args[4]
            real_launch(kmod._bitmap_densify_kernel, (kmod.cdiv(m, 16), kmod.cdiv(args[5], 128), 1), tuple(args),
                        self.constexprs, self.num_warps, 1)
            return True

    real_launch = kmod.launch
    records = []

    def launch(fn, grid, args, constexprs, num_warps, num_stages, prepare=None):
        real_launch(fn, grid, args, constexprs, num_warps, num_stages)
        if prepare is None:
            return None
        assert fn is kmod._bitmap_densify_kernel and prepare == (2, 3)
        records.append(FakeRecord(args, constexprs, num_warps))
        return records[-1]

    monkeypatch.setattr(kmod, "launch", launch)
    g = gen(228)
    a, plan, full, real = _forced_plan(monkeypatch, kmod.DENSIFY, 40, 200, 0.7, g, kernel_device)
    t = a.topology
    dense = a.to_dense().double()
    for _ in range(3):
        b = randn(200, 130, g=g, dtype=torch.bfloat16, device=kernel_device)
        c = plan(a.values, b)
        assert c.shape == (40, 130) and c.dtype == torch.bfloat16
        assert_close(c, dense @ b.double(), torch.bfloat16, 200, slack=bf16_slack(torch.bfloat16))
    assert len(full) == 1 and len(records) == 1 and records[0].runs == 2 and plan._state[3] == kmod.DENSIFY
    records[0].ok = False  # e.g. another alignment: the full path again, and a new record
    c = plan(a.values, b)
    assert_close(c, dense @ b.double(), torch.bfloat16, 200, slack=bf16_slack(torch.bfloat16))
    assert len(full) == 2 and len(records) == 2
    # no record for a bias, ReLU, batched values or another output dtype
    for kw in ({"bias": randn(40, g=g, dtype=torch.bfloat16, device=kernel_device)}, {"relu": True},
               {"out_dtype": torch.float32}):
        out: list = []
        real(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=kmod.DENSIFY, bitmap=t.bitmap,
             record=out, **kw)
        assert out == [kmod.DENSIFY], kw
    out = []
    real(t.row_offsets, t.column_indices, t.row_swizzle, a.values[None], b[None], config=kmod.DENSIFY,
         bitmap=t.bitmap, record=out)
    assert out == [kmod.DENSIFY]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=["bf16", "fp32"])
def test_gpu_plan_repeats_a_densify_launch(monkeypatch, dtype):
    """SpmmPlan repeats a densify choice on the GPU (the decode's recorded launch, then cuBLAS, or
    in fp32 the split product's recorded launch): right over repeats with fresh operands, the full
    path taken once, and inside a CUDA-graph capture."""
    from sgk.kernels import spmm as kmod

    g = gen(229)
    a, plan, full, _ = _forced_plan(monkeypatch, kmod.DENSIFY, 512, 700, 0.8, g, dtype=dtype)
    t = a.topology
    dense = a.to_dense().double()
    b = randn(700, 300, g=g, dtype=dtype, device="cuda")
    first = plan(a.values, b)
    assert plan._state is not None and plan._state[3] == kmod.DENSIFY and len(full) == 1
    assert (plan._state[4][1] is not None) == (dtype == torch.float32)  # fp32: the product's record
    assert_close(first, dense @ b.double(), dtype, t.max_row_length)
    for _ in range(5):
        assert torch.equal(plan(a.values, b), first)
    b2 = randn(700, 300, g=g, dtype=dtype, device="cuda")
    assert_close(plan(a.values, b2), dense @ b2.double(), dtype, t.max_row_length)
    assert len(full) == 1
    # values one element off their allocation: the record refuses, the full path runs (and records anew)
    shifted = torch.empty(a.nnz + 1, dtype=dtype, device="cuda")[1:]
    shifted.copy_(a.values)
    assert_close(plan(shifted, b2), dense @ b2.double(), dtype, t.max_row_length)
    assert len(full) == 2
    assert_close(plan(a.values, b2), dense @ b2.double(), dtype, t.max_row_length)
    before = len(full)
    assert_close(plan(a.values, b), dense @ b.double(), dtype, t.max_row_length)
    assert len(full) == before  # recorded again for these operands: the capture below repeats the record
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = plan(a.values, b)
    assert len(full) == before
    b.copy_(b2)
    graph.replay()
    torch.cuda.synchronize()
    assert_close(out, dense @ b2.double(), dtype, t.max_row_length)
    if dtype == torch.float32:  # B one element off: the product's record refuses after the decode ran
        bs = torch.empty(700 * 300 + 1, dtype=dtype, device="cuda")[1:].view(700, 300)
        bs.copy_(b2)
        assert_close(plan(a.values, bs), dense @ b2.double(), dtype, t.max_row_length)
        assert len(full) == before + 1


@pytest.mark.gpu
def test_gpu_split_in_a_cuda_graph(monkeypatch):
    """A split launch captured in a CUDA graph replays right with new operands, whether or not an
    eager launch cached buffers first (a capture takes its own from the graph's pool)."""
    from sgk.kernels import spmm as kmod

    split_flags = []
    real = kmod.launch
    monkeypatch.setattr(kmod, "launch", lambda kernel, grid, args, constexprs, *rest: (
        split_flags.append(constexprs.get("SPLIT")), real(kernel, grid, args, constexprs, *rest)))
    g = gen(220)
    a = sgk.CSRMatrix.random(1024, 4096, 0.8, dtype=torch.bfloat16, generator=g).to("cuda")
    t = a.topology
    cfg = kmod.SpmmConfig(64, 128, 16, 4, 3, "bitmap", 4)
    dense = a.to_dense().double()
    for n, warm in ((16, True), (64, False)):
        b = randn(4096, n, g=g, dtype=torch.bfloat16, device="cuda")
        run = lambda: kmod.spmm(t.row_offsets, t.column_indices, t.row_swizzle, a.values, b, config=cfg,  # noqa: E731
                                bitmap=t.bitmap)
        if warm:
            run()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = run()
        assert split_flags[-1] is True
        for _ in range(3):
            b.copy_(randn(4096, n, g=g, dtype=torch.bfloat16, device="cuda"))
            graph.replay()
            torch.cuda.synchronize()
            assert_close(out, dense @ b.double(), torch.bfloat16, t.max_row_length, msg=f"n={n}:")
