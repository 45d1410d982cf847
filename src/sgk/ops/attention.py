"""``attention``: sparse attention as SDDMM → sparse softmax → SpMM, with autograd, memory O(nnz)."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ..checks import (FLOAT_DTYPES, broadcast_batch, check, check_csr, check_dense, check_same_device,
                      check_same_dtype, is_real)
from ..csr import CSRMatrix, Topology
from .sddmm import sddmm
from .softmax import sparse_softmax
from .spmm import spmm

__all__ = ["attention"]


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    topology: CSRMatrix | Sequence[CSRMatrix],
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
            are ignored). Builders: :mod:`sgk.patterns`. Or a sequence of B such topologies, one
            per sample (the first batch dimension of q, k, v has size B; any further batch
            dimensions, e.g. heads, share the sample's topology): they are joined into one
            block-diagonal pattern (:meth:`CSRMatrix.block_diagonal`) and the whole batch still
            runs in one launch per op. The join is redone each call; for a fixed set of patterns
            build the block-diagonal CSRMatrix once and stack q, k, v along rows yourself.
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
    check(scale is None or is_real(scale),
          lambda: f"{op}(): scale must be a number or None, got {type(scale).__name__}", TypeError)
    if isinstance(topology, (list, tuple)):
        return _per_sample(q, k, v, topology, scale, causal, method)
    check_csr(op, "topology", topology)
    check_same_device(op, q=q, k=k, v=v, topology=topology.row_offsets)
    check_same_dtype(op, q=q, k=k, v=v)
    L, Lk = topology.shape
    check(q.shape[-2] == L, lambda: f"{op}(): topology is {L}×{Lk} so q must be (*batch, {L}, d), got {tuple(q.shape)}")
    check(k.shape[-2] == Lk, lambda: f"{op}(): topology is {L}×{Lk} so k must be (*batch, {Lk}, d), got {tuple(k.shape)}")
    check(v.shape[-2] == Lk, lambda: f"{op}(): topology is {L}×{Lk} so v must be (*batch, {Lk}, dv), got {tuple(v.shape)}")
    check(q.shape[-1] == k.shape[-1], lambda: f"{op}(): q and k must share d, got {tuple(q.shape)} and {tuple(k.shape)}")
    broadcast_batch(op, ("q", "k", "v"), (q.shape[:-2], k.shape[:-2], v.shape[:-2]))  # an error naming them
    d = q.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    scores = sddmm(q, k, topology, method=method)
    probs = sparse_softmax(scores, scale=scale, causal=causal, method=method)
    return spmm(probs, v, method=method)


def _per_sample(q, k, v, topologies, scale, causal, method) -> torch.Tensor:
    """Attention with one topology per sample: the samples become diagonal blocks of one pattern
    and q, k, v are stacked along their rows, so each op is still one launch."""
    op = "attention"
    for i, t in enumerate(topologies):
        check_csr(op, f"topology[{i}]", t)
    B = len(topologies)
    check(B > 0, f"{op}(): a per-sample topology list must not be empty")
    shape0 = topologies[0].shape
    for i, t in enumerate(topologies[1:], 1):
        check(t.shape == shape0, lambda: f"{op}(): per-sample topologies must share one shape, topology[{i}] is {t.shape}, topology[0] {shape0}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        check(
            t.dim() >= 3 and t.shape[0] == B,
            lambda: f"{op}(): with {B} per-sample topologies, {name} must be (B={B}, *batch, L, d), got {tuple(t.shape)}",
        )
    L, Lk = shape0
    check(not causal or L == Lk, lambda: f"{op}(): causal per-sample attention needs square topologies, got {L}×{Lk}")
    # the batch dimensions after the sample's (e.g. heads) broadcast first: stacking moves them ahead
    heads = broadcast_batch(op, ("q", "k", "v"), (q.shape[1:-2], k.shape[1:-2], v.shape[1:-2]))
    q, k, v = (t.reshape(B, *[1] * (len(heads) + 3 - t.dim()), *t.shape[1:]).expand(B, *heads, *t.shape[-2:])
               for t in (q, k, v))
    topo = Topology.block_diagonal([t.topology for t in topologies])
    pattern = CSRMatrix._make(topo, q.new_zeros(topo.nnz))

    def stack(t):  # (B, *h, rows, d) -> (*h, B·rows, d)
        return t.movedim(0, -3).reshape(*t.shape[1:-2], B * t.shape[-2], t.shape[-1])

    out = attention(stack(q), stack(k), stack(v), pattern, scale=scale, causal=causal, method=method)
    return out.reshape(*heads, B, L, v.shape[-1]).movedim(-3, 0)
