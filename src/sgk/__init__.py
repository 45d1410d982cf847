"""sgk: Sparse GPU Kernels for deep learning: SpMM, SDDMM, sparse softmax in Triton, for PyTorch."""
from . import io, ops, patterns
from .csr import CSRMatrix, Topology
from .ops import attention, sddmm, sparse_softmax, spmm, transpose

__version__ = "0.1.0"

__all__ = [
    "CSRMatrix",
    "Topology",
    "spmm",
    "sddmm",
    "sparse_softmax",
    "transpose",
    "attention",
    "io",
    "ops",
    "patterns",
    "__version__",
]
