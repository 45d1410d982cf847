"""``transpose``: the k×m transpose of a CSRMatrix."""
from __future__ import annotations

from ..checks import check_csr
from ..csr import CSRMatrix

__all__ = ["transpose"]


def transpose(a: CSRMatrix) -> CSRMatrix:
    """Aᵀ as a CSRMatrix. The transposed topology and the value permutation are computed once per
    topology (on its device) and cached both ways; after that a transpose is one gather of the
    values, differentiable through torch. Reference: :func:`sgk.ops.reference.transpose`."""
    check_csr("transpose", "a", a)
    return a.t()
