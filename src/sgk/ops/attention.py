"""``attention``: sparse attention as SDDMM → sparse softmax → SpMM, with autograd, memory O(nnz)."""
from __future__ import annotations

import math

import torch

from ..checks import FLOAT_DTYPES, check, check_csr, check_dense, check_same_device, check_same_dtype
from ..csr import CSRMatrix
from .sddmm import sddmm
from .softmax import sparse_softmax
from .spmm import spmm

__all__ = ["attention"]


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    topology: CSRMatrix,
    *,
    scale: float | None = None,
    causal: bool = False,
    method: str = "auto",
) -> torch.Tensor:
    """softmax(scale · Q·Kᵀ restricted to ``topology``) · V, never materialising the L×L scores.

    Args:
        q: (*batch, L, d) queries (batch = e.g. (batch, heads); every entry shares the topology).
        k: (*batch, Lk, d) keys.
        v: (*batch, Lk, dv) values.
        topology: :class:`~sgk.CSRMatrix` L×Lk: which (query, key) pairs are computed (its values
            are ignored). Builders: :mod:`sgk.patterns`.
        scale: score scale, default 1/sqrt(d).
        causal: additionally mask keys after the query (column > row) inside the softmax kernel.
        method: ``"auto"``, ``"triton"`` or ``"reference"`` (see :func:`sgk.spmm`).

    Returns:
        (*batch, L, dv). Differentiable in q, k and v; what autograd keeps is O(batch · nnz)
        (the attention probabilities) besides q, k, v.
    """
    op = "attention"
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_dense(op, name, t, dtypes=FLOAT_DTYPES, min_ndim=2)
    check_csr(op, "topology", topology)
    check_same_device(op, q=q, k=k, v=v, topology=topology.row_offsets)
    check_same_dtype(op, q=q, k=k, v=v)
    L, Lk = topology.shape
    check(q.shape[-2] == L, lambda: f"{op}(): topology is {L}×{Lk} so q must be (*batch, {L}, d), got {tuple(q.shape)}")
    check(k.shape[-2] == Lk, lambda: f"{op}(): topology is {L}×{Lk} so k must be (*batch, {Lk}, d), got {tuple(k.shape)}")
    check(v.shape[-2] == Lk, lambda: f"{op}(): topology is {L}×{Lk} so v must be (*batch, {Lk}, dv), got {tuple(v.shape)}")
    check(q.shape[-1] == k.shape[-1], lambda: f"{op}(): q and k must share d, got {tuple(q.shape)} and {tuple(k.shape)}")
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    scores = sddmm(q, k, topology, method=method)
    probs = sparse_softmax(scores, scale=scale, causal=causal, method=method)
    return spmm(probs, v, method=method)
