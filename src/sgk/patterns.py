"""Attention topologies: which (query, key) pairs a sparse attention computes.

Every builder returns an L×L :class:`~sgk.CSRMatrix` (values are ones; sddmm ignores them) whose
rows always hold the diagonal, so no query attends to nothing. ``causal=True`` keeps only keys at
or before the query (column <= row). Random builders are reproducible from ``seed``.

* :func:`band_and_decay` — the paper's sparse-Transformer pattern: a dense band around the
  diagonal plus random entries whose density decays with distance from it.
* :func:`random_uniform` — a fixed uniform random pattern (plus the diagonal).
* :func:`local_band` — a sliding window.
* :func:`strided` — a window plus every ``stride``-th key (Child et al.'s strided pattern).

Sparsity is the fraction of the allowed region left out: of all L² pairs, or, when causal, of
the L(L+1)/2 pairs at or below the diagonal.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .checks import check, is_real
from .csr import CSRMatrix

__all__ = ["band_and_decay", "random_uniform", "local_band", "strided"]

_CHUNK_ELEMENTS = 1 << 22  # rows are built in chunks of about this many candidate pairs


def _assemble(L: int, row_cols: list[tuple[torch.Tensor, torch.Tensor]], device: Any) -> CSRMatrix:
    rows = torch.cat([r for r, _ in row_cols]) if row_cols else torch.zeros(0, dtype=torch.int64)
    cols = torch.cat([c for _, c in row_cols]) if row_cols else torch.zeros(0, dtype=torch.int64)
    offsets = torch.zeros(L + 1, dtype=torch.int64, device=rows.device)
    offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=L), 0)
    a = CSRMatrix(offsets, cols, torch.ones(cols.numel(), device=rows.device), (L, L))
    return a.to(device) if device is not None else a


def _chunks(L: int, device: torch.device):
    step = max(1, _CHUNK_ELEMENTS // max(L, 1))
    j = torch.arange(L, device=device)
    for start in range(0, L, step):
        i = torch.arange(start, min(L, start + step), device=device)
        yield i, j, i[:, None] - j[None, :]  # signed distance: row − column


def _from_rule(L: int, causal: bool, rule: Callable[[torch.Tensor], torch.Tensor], device: Any) -> CSRMatrix:
    """Deterministic pattern: keep (i, j) where rule(i − j) holds (and j <= i when causal)."""
    out = []
    for i, _j, dist in _chunks(L, torch.device("cpu")):
        keep = rule(dist) | (dist == 0)
        if causal:
            keep &= dist >= 0
        r, c = keep.nonzero(as_tuple=True)
        out.append((r + i[0], c))
    return _assemble(L, out, device)


def _sampled(
    L: int,
    sparsity: float,
    causal: bool,
    band: int,
    weight: Callable[[torch.Tensor], torch.Tensor],
    seed: int,
    device: Any,
) -> CSRMatrix:
    """Per row, keep round((1 − sparsity)·allowed) keys: the band first, the rest drawn without
    replacement with probability ∝ weight(|i − j|) (Gumbel top-k)."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator(device=dev).manual_seed(seed)
    out = []
    for i, _j, dist in _chunks(L, dev):
        absd = dist.abs()
        allowed = dist >= 0 if causal else torch.ones_like(dist, dtype=torch.bool)
        in_band = allowed & ((dist < band) if causal else (2 * absd < band)) | (dist == 0)
        n_allowed = allowed.sum(1)
        keep_n = torch.clamp(torch.round((1.0 - sparsity) * n_allowed.double()).long(), min=1)
        keep_n = torch.maximum(keep_n, torch.ones_like(keep_n))
        u = torch.rand(dist.shape, generator=gen, device=dev).clamp_(min=1e-12)
        keys = torch.log(weight(absd.double()).clamp_min(1e-300)).float() - torch.log(-torch.log(u))
        keys = torch.where(in_band, torch.full_like(keys, 1e30), keys)  # the band before random keys
        keys = torch.where(dist == 0, torch.full_like(keys, float("inf")), keys)  # the diagonal first
        keys = torch.where(allowed, keys, torch.full_like(keys, float("-inf")))
        kmax = int(keep_n.max())
        top = torch.topk(keys, kmax, dim=1).indices
        take = torch.arange(kmax, device=dev)[None, :] < keep_n[:, None]
        cols = torch.sort(torch.where(take, top, L), dim=1).values
        sel = cols < L
        r = (i[:, None]).expand_as(cols)[sel]
        out.append((r, cols[sel]))
    return _assemble(L, out, device)


def _check_common(op: str, L: int, sparsity: float | None = None) -> None:
    check(isinstance(L, int) and L >= 1, f"{op}: L must be a positive int, got {L!r}")
    if sparsity is not None:
        check(0.0 <= sparsity < 1.0, f"{op}: sparsity must be in [0, 1), got {sparsity}")


def band_and_decay(
    L: int,
    sparsity: float = 0.95,
    *,
    band: int | None = None,
    decay: float | None = None,
    causal: bool = False,
    seed: int = 0,
    device: Any = None,
) -> CSRMatrix:
    """The sparse-Transformer pattern of the paper: a dense band plus random, distance-decaying keys.

    Args:
        L: sequence length.
        sparsity: fraction of the allowed pairs left out (0.95 in the paper).
        band: width of the dense band (default: a third of each row's budget, at least 1).
        decay: distance scale of the random part, whose density ∝ 1 / (1 + distance / decay)
            (default L / 16).
        causal: keys at or before the query only.
        seed, device: reproducibility, and where the pattern is built and returned.
    """
    _check_common("sgk.patterns.band_and_decay()", L, sparsity)
    budget = max(1, round((1.0 - sparsity) * L))
    band = max(1, budget // 3) if band is None else int(band)
    check(band >= 0, f"sgk.patterns.band_and_decay(): band must be >= 0, got {band}")
    check(decay is None or (is_real(decay) and decay > 0),
          lambda: f"sgk.patterns.band_and_decay(): decay must be a positive number or None, got {decay!r}")
    scale = float(decay) if decay is not None else max(1.0, L / 16)
    return _sampled(L, sparsity, causal, band, lambda d: 1.0 / (1.0 + d / scale), seed, device)


def random_uniform(L: int, sparsity: float, *, causal: bool = False, seed: int = 0, device: Any = None) -> CSRMatrix:
    """A fixed uniform random pattern (plus the diagonal)."""
    _check_common("sgk.patterns.random_uniform()", L, sparsity)
    return _sampled(L, sparsity, causal, 0, torch.ones_like, seed, device)


def local_band(L: int, window: int, *, causal: bool = False, device: Any = None) -> CSRMatrix:
    """A sliding window: keys within ``window`` positions (|i − j| <= window; j <= i when causal)."""
    _check_common("sgk.patterns.local_band()", L)
    check(window >= 0, f"sgk.patterns.local_band(): window must be >= 0, got {window}")
    return _from_rule(L, causal, lambda d: d.abs() <= window, device)


def strided(L: int, stride: int, *, causal: bool = False, device: Any = None) -> CSRMatrix:
    """Child et al.'s strided pattern: the previous ``stride`` keys and every ``stride``-th key
    (|i − j| < stride, or (i − j) divisible by stride)."""
    _check_common("sgk.patterns.strided()", L)
    check(stride >= 1, f"sgk.patterns.strided(): stride must be >= 1, got {stride}")
    return _from_rule(L, causal, lambda d: (d.abs() < stride) | (d % stride == 0), device)
