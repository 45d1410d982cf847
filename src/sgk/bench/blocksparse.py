"""``sgk bench blocksparse``: the four products of a block-sparse weight in a training step.

Each case is one product (the case's ``method``) of a block-sparse A (m×k, ``block_size`` blocks)
at width N:

- ``fwd``: C = A·B (B k×N) — the forward of ``y = W·x``;
- ``dsmm``: Y = X·A (X N×m) — the forward of ``y = x·W`` (dense × sparse);
- ``dgrad``: Aᵀ·dC (dC m×N) — the input gradient, Aᵀ read in place;
- ``wgrad``: the blocks of dC·Bᵀ at A's pattern — the weight gradient (block SDDMM).

Implementations (``--impl``):

- ``sgk``: sgk's block-sparse kernels at ``--dtype`` (fp32 on TF32 tensor cores).
- ``cublas``: the same product dense at ``--dtype`` (fp32 with TF32 on, like sgk's fp32).
- ``cublas_bf16``: the same product dense in bf16.
- ``torch_bsr``: ``torch.sparse_bsr_tensor @ dense`` at ``--dtype`` (fwd and dgrad only).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..bsr import BSRMatrix
from .harness import CachedInputs, Benchmark, Impl, Prepared, register_benchmark, relative_error, tf32_matmul
from .spmm import _last_config
from .suites import Case

__all__ = ["BlockSparseBenchmark", "BlockSparseInputs"]

_ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass
class BlockSparseInputs(CachedInputs):
    """A (fp32 blocks on the device), the product, and its dense operand(s) in fp32; casts, dense
    copies and float64 references per precision are built on first use and cached."""

    a: BSRMatrix
    product: str
    dense: torch.Tensor  # B (k×N) for fwd/wgrad, X (N×m) for dsmm, dC (m×N) for dgrad/wgrad
    dense2: torch.Tensor | None = None  # wgrad: B (k×N)

    def sparse(self, precision: str) -> BSRMatrix:
        return self._get("a", precision, lambda dt: self.a.to(dtype=dt))

    def operands(self, precision: str) -> tuple[torch.Tensor, ...]:
        def make(dt):
            ops = (self.dense.to(dt).contiguous(),)
            return ops + ((self.dense2.to(dt).contiguous(),) if self.dense2 is not None else ())

        return self._get("ops", precision, make)

    def dense_a(self, precision: str) -> torch.Tensor:
        return self._get("dense_a", precision, lambda dt: self.sparse(precision).to_dense().contiguous())

    def dense_fn(self, precision: str):
        """The product on the dense A, as a closure over cached inputs."""
        a, ops = self.dense_a(precision), self.operands(precision)
        if self.product == "fwd":
            return lambda: a @ ops[0]
        if self.product == "dsmm":
            return lambda: ops[0] @ a
        if self.product == "dgrad":
            at = a.t().contiguous()
            return lambda: at @ ops[0]
        return lambda: ops[0] @ ops[1].t()  # wgrad: the full dense dC·Bᵀ

    def reference(self, precision: str) -> torch.Tensor:
        """float64 result from the inputs as rounded to ``precision`` (for wgrad: the kept blocks)."""

        def make(dt):
            a = self.sparse(precision).to(dtype=torch.float64)
            ops = [t.to(torch.float64) for t in self.operands(precision)]
            if self.product == "fwd":
                return a.to_dense() @ ops[0]
            if self.product == "dsmm":
                return ops[0] @ a.to_dense()
            if self.product == "dgrad":
                return a.to_dense().t() @ ops[0]
            full = ops[0] @ ops[1].t()
            return BSRMatrix.from_dense(full, a.block_size, mask=a.block_mask()).values

        return self._get("ref", precision, make)

    def error(self, precision: str):
        if self.product == "wgrad":
            ref = self.reference(precision)
            mask = self.a.block_mask()
            bs = self.a.block_size
            return lambda out: relative_error(
                out.values if isinstance(out, BSRMatrix) else BSRMatrix.from_dense(out, bs, mask=mask).values, ref
            )
        return lambda out: relative_error(out, self.reference(precision))


def _sgk(inp: BlockSparseInputs, dtype: str) -> Prepared:
    import sgk
    from ..ops.bsr import _mm

    a, ops = inp.sparse(dtype), inp.operands(dtype)
    precision = "tf32" if dtype == "fp32" else dtype
    backend = "triton" if a.device.type == "cuda" else "reference"
    if inp.product == "fwd":
        fn = lambda: sgk.bsr_spmm(a, ops[0])  # noqa: E731
    elif inp.product == "dsmm":
        fn = lambda: sgk.bsr_dsmm(ops[0], a)  # noqa: E731
    elif inp.product == "dgrad":
        a.topology.prepare(transpose=True)
        values, dc = a.values[None], ops[0][None]
        fn = lambda: _mm(a.topology, a.block_size, values, dc, True, False, backend)[0]  # noqa: E731  (Aᵀ in place)
    else:
        fn = lambda: sgk.bsr_sddmm(ops[0], ops[1], a)  # noqa: E731
    return Prepared(fn, precision, inp.error(dtype), describe=_last_config("bsr", a.values))


def _cublas_at(precision: str):
    def prepare(inp: BlockSparseInputs, dtype: str) -> Prepared:
        p = dtype if precision == "run" else precision
        tf32 = p == "fp32"
        return Prepared(inp.dense_fn(p), "tf32" if tf32 else p, inp.error(p), lambda: tf32_matmul(tf32))

    return prepare


def _torch_bsr(inp: BlockSparseInputs, dtype: str) -> Prepared:
    if inp.product not in ("fwd", "dgrad"):
        raise NotImplementedError(f"torch's BSR matmul has no {inp.product} form here")
    a = inp.sparse(dtype)
    t = (a if inp.product == "fwd" else a.t()).to_torch()
    (rhs,) = inp.operands(dtype)
    tf32 = dtype == "fp32"
    return Prepared(lambda: t @ rhs, "tf32" if tf32 else dtype, inp.error(dtype), lambda: tf32_matmul(tf32))


@register_benchmark
@dataclass
class BlockSparseBenchmark(Benchmark):
    """Block-sparse products on tensor cores against dense cuBLAS and torch's BSR matmul."""

    kind = "blocksparse"
    help = "block-sparse weight products of a training step (fwd A·B, X·A, Aᵀ·dC, block SDDMM)"
    impls = {
        "sgk": Impl("sgk", "sgk's block-sparse kernels at --dtype (fp32: TF32 tensor cores)", _sgk, baseline=False),
        "cublas": Impl("cublas", "the product with dense A at --dtype (fp32: TF32 on)", _cublas_at("run")),
        "cublas_bf16": Impl("cublas_bf16", "the product with dense A in bf16", _cublas_at("bf16")),
        "torch_bsr": Impl("torch_bsr", "torch.sparse_bsr_tensor @ dense at --dtype (fwd, dgrad)", _torch_bsr),
    }
    default_impls = ("sgk", "cublas", "torch_bsr")
    suites = ("blocksparse",)
    suite: str = "blocksparse"

    def load_matrix(self, case: Case) -> BSRMatrix:  # type: ignore[override]
        if self._matrix_cache is not None and self._matrix_cache[0] == case.matrix_id + f"/b{case.block_size}":
            return self._matrix_cache[1]
        gen = torch.Generator().manual_seed(self.case_seed(case))
        a = BSRMatrix.random(case.m, case.k, case.block_size, case.sparsity, generator=gen, device=self.torch_device)
        self._matrix_cache = (case.matrix_id + f"/b{case.block_size}", a)
        return a

    def make_inputs(self, case: Case, matrix: BSRMatrix, generator: torch.Generator) -> BlockSparseInputs:  # type: ignore[override]
        dev = self.torch_device

        def randn(*shape):
            return torch.randn(*shape, generator=generator, device=dev, dtype=torch.float32)

        m, k, n = case.m, case.k, case.n
        if case.method == "fwd":
            return BlockSparseInputs(matrix, "fwd", randn(k, n))
        if case.method == "dsmm":
            return BlockSparseInputs(matrix, "dsmm", randn(n, m))
        if case.method == "dgrad":
            return BlockSparseInputs(matrix, "dgrad", randn(m, n))
        return BlockSparseInputs(matrix, "wgrad", randn(m, n), randn(k, n))

    def bytes_moved(self, case: Case, dtype: str, result=None) -> float:
        """Kept blocks and their indices, the dense operand(s) read once, the result written once."""
        e = _ELEMENT_BYTES[dtype]
        blocks = case.nnz // max(case.block_size**2, 1)
        sparse = case.nnz * e + blocks * 4 + (case.m // max(case.block_size, 1) + 1) * 4
        if case.method == "wgrad":
            return sparse + (case.m + case.k) * case.n * e
        inner, outer = (case.m, case.k) if case.method in ("dsmm", "dgrad") else (case.k, case.m)
        return sparse + inner * case.n * e + outer * case.n * e
