"""sgk: Sparse GPU Kernels for deep learning: SpMM, SDDMM, sparse softmax in Triton, for PyTorch."""
from . import io, ops, patterns
from .bsr import BSRMatrix
from .csr import CSRMatrix, Topology
from .ops import attention, bsr_dsmm, bsr_sddmm, bsr_spmm, sddmm, sparse_softmax, spmm, transpose

__version__ = "0.1.0"

__all__ = [
    "CSRMatrix",
    "BSRMatrix",
    "Topology",
    "spmm",
    "sddmm",
    "sparse_softmax",
    "transpose",
    "attention",
    "bsr_spmm",
    "bsr_dsmm",
    "bsr_sddmm",
    "io",
    "ops",
    "patterns",
    "__version__",
]

_LAZY = ("kernels", "bench", "testing")
"""Submodules imported on first use (``sgk.kernels.set_autotune(False)`` works after a plain
``import sgk``): the kernels import Triton, the benchmarks more; a CPU-only user pays for neither."""


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'sgk' has no attribute {name!r}")
