"""Public sparse ops with autograd. CUDA tensors run Triton kernels; CPU tensors the reference."""
from . import reference
from .attention import attention
from .bsr import bsr_dsmm, bsr_sddmm, bsr_spmm
from .sddmm import sddmm
from .softmax import sparse_softmax
from .spmm import spmm
from .transpose import transpose

__all__ = ["spmm", "sddmm", "sparse_softmax", "transpose", "attention", "bsr_spmm", "bsr_dsmm", "bsr_sddmm", "reference"]
