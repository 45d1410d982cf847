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
