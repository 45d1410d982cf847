"""``sgk bench sddmm``: the weight-gradient SDDMM, X·Yᵀ sampled at a sparse pattern.

For a sparse weight m×k and width n: X is m×n, Y is k×n, the output has the pattern's nonzeros.

Implementations (``--impl``):

- ``sgk``: :func:`sgk.sddmm` at ``--dtype``.
- ``cublas``: the full dense X·Yᵀ (m×k) at ``--dtype`` (fp32 with TF32 off).
- ``cublas_tf32``, ``cublas_bf16``: the same with TF32 on / in bf16.
- ``cusparse``: ``torch.sparse.sampled_addmm`` fp32 with beta = 0 (cuSPARSE SDDMM has no bf16:
  it always runs fp32), Yᵀ passed row-major as in the anchors.
- ``cusparse_colmajor``: the same with Yᵀ a column-major view (cuSPARSE's faster layout).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..csr import CSRMatrix
from .harness import CachedInputs, Benchmark, Impl, Prepared, register_benchmark, relative_error, tf32_matmul
from .spmm import _last_config
from .suites import Case

__all__ = ["SddmmBenchmark", "SddmmInputs"]

_ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass
class SddmmInputs(CachedInputs):
    """The pattern (fp32 values, on the device), X (m×n) and Y (k×n) fp32 N(0, 1); casts and
    float64 references per input precision are built on first use and cached."""

    pattern: CSRMatrix
    x: torch.Tensor
    y: torch.Tensor

    def xy(self, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._get("xy", precision, lambda dt: (self.x.to(dt).contiguous(), self.y.to(dt).contiguous()))

    def sparse(self, precision: str) -> CSRMatrix:
        return self._get("pattern", precision, lambda dt: self.pattern.to(dtype=dt))

    def dense_reference(self, precision: str) -> torch.Tensor:
        """float64 X·Yᵀ (m×k) from the inputs as rounded to ``precision``."""

        def make(dt):
            x, y = self.xy(precision)
            return x.to(torch.float64) @ y.to(torch.float64).T

        return self._get("dense_ref", precision, make)

    def sampled_reference(self, precision: str) -> torch.Tensor:
        """float64 X·Yᵀ at the pattern's nonzeros (nnz)."""

        def make(dt):
            p = self.pattern
            return self.dense_reference(precision)[p.row_indices.long(), p.column_indices.long()]

        return self._get("sampled_ref", precision, make)


def _sgk(inp: SddmmInputs, dtype: str) -> Prepared:
    import sgk

    (x, y), pattern = inp.xy(dtype), inp.sparse(dtype)
    return Prepared(
        lambda: sgk.sddmm(x, y, pattern),
        dtype,
        lambda out: relative_error(out.values, inp.sampled_reference(dtype)),
        describe=_last_config("sddmm", x),
    )


def _cublas_at(precision: str, tf32: bool):
    def prepare(inp: SddmmInputs, dtype: str) -> Prepared:
        p = dtype if precision == "run" else precision
        x, y = inp.xy(p)
        yt = y.T
        return Prepared(
            lambda: torch.matmul(x, yt),
            "tf32" if tf32 else p,
            lambda out: relative_error(out, inp.dense_reference(p)),
            lambda: tf32_matmul(tf32),
        )

    return prepare


def _cusparse_with(column_major: bool):
    """cuSPARSE SDDMM through ``torch.sparse.sampled_addmm(pattern, X, Yᵀ, beta=0)``, fp32.

    ``column_major=False`` passes Yᵀ as a row-major (n×k) copy made outside the timed region: the
    layout of the anchors' cuSPARSE column, so the Sputnik estimate compares like with like.
    ``column_major=True`` passes the transposed view of Y (column-major Yᵀ, no copy), which
    cuSPARSE runs about 2x faster on the DLMC Transformer shapes (H100, torch 2.11).
    """

    def prepare(inp: SddmmInputs, dtype: str) -> Prepared:
        x, y = inp.xy("fp32")
        pattern = inp.sparse("fp32").to_torch()
        yt = y.T if column_major else y.T.contiguous()

        def fn():
            return torch.sparse.sampled_addmm(pattern, x, yt, beta=0.0, alpha=1.0)

        return Prepared(
            fn,
            "fp32",
            lambda out: relative_error(out.values(), inp.sampled_reference("fp32")),
            lambda: tf32_matmul(False),
        )

    return prepare


@register_benchmark
@dataclass
class SddmmBenchmark(Benchmark):
    """Weight-gradient SDDMM on the DLMC shapes: sgk against dense cuBLAS X·Yᵀ and cuSPARSE."""

    kind = "sddmm"
    help = "sampled dense-dense product (X·Yᵀ at a sparse m×k pattern; X m×n, Y k×n)"
    impls = {
        "sgk": Impl("sgk", "sgk.sddmm at --dtype", _sgk, baseline=False),
        "cublas": Impl("cublas", "full dense X @ Y.T at --dtype (fp32: TF32 off)", _cublas_at("run", False)),
        "cublas_tf32": Impl("cublas_tf32", "full dense X @ Y.T, fp32 inputs, TF32 on", _cublas_at("fp32", True)),
        "cublas_bf16": Impl("cublas_bf16", "full dense X @ Y.T in bf16", _cublas_at("bf16", False)),
        "cusparse": Impl(
            "cusparse",
            "torch.sparse.sampled_addmm(pattern, X, Yᵀ row-major, beta=0), always fp32 (cuSPARSE SDDMM; the anchors' layout)",
            _cusparse_with(column_major=False),
        ),
        "cusparse_colmajor": Impl(
            "cusparse_colmajor",
            "the same with Yᵀ as a column-major view of Y (faster cuSPARSE path), always fp32",
            _cusparse_with(column_major=True),
        ),
    }
    # The anchors hold Sputnik's SDDMM in fp32 only: it is the reference for every --dtype.
    anchor_columns = {d: ("sddmm_cusparse32", "sddmm_sputnik32") for d in ("fp32", "fp16", "bf16")}

    def make_inputs(self, case: Case, matrix: CSRMatrix, generator: torch.Generator) -> SddmmInputs:
        dev = self.torch_device
        x = torch.randn(case.m, case.n, generator=generator, device=dev, dtype=torch.float32)
        y = torch.randn(case.k, case.n, generator=generator, device=dev, dtype=torch.float32)
        return SddmmInputs(matrix, x, y)

    def bytes_moved(self, case: Case, dtype: str, result=None) -> float:
        """X and Y read once + column indices + row offsets + row swizzle + output values."""
        e = _ELEMENT_BYTES[dtype]
        return (case.m + case.k) * case.n * e + case.nnz * (4 + e) + (case.m + 1) * 4 + case.m * 4
