"""``sgk bench spmm``: C = A·B for a sparse A (m×k) and a dense B (k×n).

Implementations (``--impl``):

- ``sgk``: :func:`sgk.spmm` at ``--dtype`` (Triton on CUDA, the plain-torch reference on the CPU).
- ``cublas``: ``torch.matmul`` on the dense A at ``--dtype`` (fp32 with TF32 off).
- ``cublas_tf32``: the same in fp32 with TF32 on.
- ``cublas_bf16``: dense bf16 on tensor cores, the bar for "sparse is worth it".
- ``cusparse``: ``torch.sparse_csr_tensor`` fp32 @ dense fp32 (cuSPARSE SpMM), always fp32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..csr import CSRMatrix
from .harness import CachedInputs, Benchmark, Impl, Prepared, register_benchmark, relative_error, tf32_matmul
from .suites import Case

__all__ = ["SpmmBenchmark", "SpmmInputs"]

_ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2}


@dataclass
class SpmmInputs(CachedInputs):
    """A (fp32, on the device) and B (k×n fp32, N(0, 1)); casts, dense copies and float64
    references per input precision are built on first use and cached."""

    a: CSRMatrix
    b: torch.Tensor

    def sparse(self, precision: str) -> CSRMatrix:
        return self._get("a", precision, lambda dt: self.a.to(dtype=dt))

    def dense_b(self, precision: str) -> torch.Tensor:
        return self._get("b", precision, lambda dt: self.b.to(dt).contiguous())

    def dense_a(self, precision: str) -> torch.Tensor:
        return self._get("dense_a", precision, lambda dt: self.sparse(precision).to_dense().contiguous())

    def reference(self, precision: str) -> torch.Tensor:
        """float64 A·B from the inputs as rounded to ``precision`` (so the check measures the
        implementation's arithmetic, not the input cast)."""

        def make(dt):
            a64 = self.sparse(precision).to(dtype=torch.float64).to_dense()
            return a64 @ self.dense_b(precision).to(torch.float64)

        return self._get("ref", precision, make)

    def error(self, precision: str):
        return lambda out: relative_error(out, self.reference(precision))


def _sgk(inp: SpmmInputs, dtype: str) -> Prepared:
    import sgk

    a, b = inp.sparse(dtype), inp.dense_b(dtype)
    return Prepared(lambda: sgk.spmm(a, b), dtype, inp.error(dtype), describe=_last_config("spmm", b))


def _last_config(kernel: str, t: torch.Tensor):
    """A describe() hook: the configuration the kernel launcher last used (CUDA runs only)."""
    def describe():
        if not t.is_cuda:
            return None
        import importlib

        return str(importlib.import_module(f"sgk.kernels.{kernel}").last_config)

    return describe


def _cublas_at(precision: str, tf32: bool):
    def prepare(inp: SpmmInputs, dtype: str) -> Prepared:
        p = dtype if precision == "run" else precision
        a, b = inp.dense_a(p), inp.dense_b(p)
        return Prepared(lambda: torch.matmul(a, b), "tf32" if tf32 else p, inp.error(p), lambda: tf32_matmul(tf32))

    return prepare


def _cusparse(inp: SpmmInputs, dtype: str) -> Prepared:
    a, b = inp.sparse("fp32").to_torch(), inp.dense_b("fp32")
    return Prepared(lambda: a @ b, "fp32", inp.error("fp32"), lambda: tf32_matmul(False))


@register_benchmark
@dataclass
class SpmmBenchmark(Benchmark):
    """SpMM on the DLMC shapes: sgk against cuBLAS (dense) and cuSPARSE."""

    kind = "spmm"
    help = "sparse × dense matrix product C = A·B (A m×k sparse, B k×n dense)"
    impls = {
        "sgk": Impl("sgk", "sgk.spmm at --dtype", _sgk, baseline=False),
        "cublas": Impl("cublas", "torch.matmul on dense A at --dtype (fp32: TF32 off)", _cublas_at("run", False)),
        "cublas_tf32": Impl("cublas_tf32", "torch.matmul on dense A, fp32 inputs, TF32 on", _cublas_at("fp32", True)),
        "cublas_bf16": Impl("cublas_bf16", "torch.matmul on dense A in bf16 (tensor cores)", _cublas_at("bf16", False)),
        "cusparse": Impl("cusparse", "torch.sparse_csr_tensor @ dense, always fp32 (cuSPARSE SpMM)", _cusparse),
    }
    anchor_columns = {"fp32": ("cusparse32", "sputnik32"), "fp16": ("cusparse32", "sputnik16"), "bf16": ("cusparse32", "sputnik16")}
    suites = ("synthetic", "dlmc", "decode")

    def make_inputs(self, case: Case, matrix: CSRMatrix, generator: torch.Generator) -> SpmmInputs:
        b = torch.randn(case.k, case.n, generator=generator, device=self.torch_device, dtype=torch.float32)
        return SpmmInputs(matrix, b)

    def reports_dram(self) -> bool:
        return self.suite == "decode"  # memory-bound by design: the bytes against the DRAM read rate

    def bytes_moved(self, case: Case, dtype: str, result=None) -> float:
        """A in the form sgk's chosen kernel read (16- or 32-bit column indices, or the bitmap;
        :func:`sgk.kernels.spmm.traffic_bytes`), B read once, C written once."""
        from ..kernels.spmm import parse_config, traffic_bytes

        sgk = result.impls.get("sgk") if result is not None else None
        cfg = parse_config(sgk.config) if sgk is not None else None
        return traffic_bytes(cfg, case.m, case.k, case.n, case.nnz, _ELEMENT_BYTES[dtype])
