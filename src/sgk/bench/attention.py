"""``sgk bench attention``: sparse attention against dense, flash and Flex attention.

One case is (L, heads, d, sparsity, mode) with a topology from :mod:`sgk.patterns` (default
band-and-decay, non-causal), batch 1, q/k/v ~ N(0, 1) at ``--dtype`` (default bf16), shape
(batch, heads, L, d). ``mode`` is ``fwd`` (the op) or ``fwdbwd`` (the op, then
``torch.autograd.grad(out, (q, k, v), grad)`` with a fixed random ``grad``).

Implementations (``--impl``):

- ``sgk``: :func:`sgk.attention` with the topology on the GPU (SDDMM → sparse softmax → SpMM).
- ``dense``: materialised attention, what the paper compared with: S = q·kᵀ (scaled in place),
  ``masked_fill_`` with the topology as a dense L×L bool mask (-inf where absent), softmax, ·v.
  The mask (L² bytes) is built outside the timed and the measured region.
- ``sdpa``: ``F.scaled_dot_product_attention`` with no mask under
  ``sdpa_kernel(SDPBackend.FLASH_ATTENTION)``: full dense attention (all L² pairs, more than sgk
  computes), the honest bar for a sparse kernel. Falls back to the default backend, with a note,
  where flash is unavailable (e.g. fp32). Not checked against the sparse reference (another function).
- ``flex``: ``torch.compile(flex_attention)`` with a ``BlockMask`` from ``create_block_mask`` at
  128×128 blocks (a block is computed when any of its pairs is in the topology) and a ``mask_mod``
  that looks up the exact dense bool mask, so the result equals ``dense``. Marked ``unavailable``
  with the reason when it cannot run (no flex_attention, compile failure, no backward on the CPU).

Every case is checked before it is timed: the output (and for ``fwdbwd`` the gradients of q, k
and v) against dense attention computed in float32 from the same rounded inputs, head by head;
relative L2 error at most :data:`~sgk.bench.harness.TOLERANCES` of ``--dtype`` (bf16: 2e-2).
Timing: ``triton.testing.do_bench`` median. Peak memory: ``max_memory_allocated()`` over one
untimed run minus what was allocated before it (q, k, v, grad, topology, mask), in MB. An
implementation that runs out of memory is marked ``oom`` and the run goes on.

Without a CUDA GPU the same cases run at reduced size on the CPU reference path (L scaled down to
at most 256, heads <= 2, d <= 16; perf_counter timings, no memory), as the other kinds do.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import itertools
import math
import os
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, ContextManager, Sequence, TextIO

import torch

from ..csr import CSRMatrix
from .harness import (
    CPU_NOTICE,
    DTYPES,
    TOLERANCES,
    Benchmark,
    Impl,
    ImplResult,
    register_benchmark,
    relative_error,
    tf32_matmul,
)

__all__ = [
    "AttentionBenchmark",
    "AttentionCase",
    "AttentionResult",
    "AttentionInputs",
    "AttnImplResult",
    "PATTERNS",
    "MODES",
    "HEADLINE",
    "build_topology",
    "dense_mask",
    "topology_blocks",
    "build_block_mask",
    "format_attention_table",
    "format_headline",
    "headline_summary",
    "attention_json",
    "plot_attention",
]

PATTERNS: tuple[str, ...] = ("band_and_decay", "random", "local", "strided")
MODES: tuple[str, ...] = ("fwd", "fwdbwd")
MODE_CHOICES: tuple[str, ...] = ("fwd", "fwdbwd", "both")

DEFAULT_L: tuple[int, ...] = (4096, 8192, 12288, 16384)
DEFAULT_HEADS: tuple[int, ...] = (8,)
DEFAULT_D: tuple[int, ...] = (64,)
DEFAULT_SPARSITY: tuple[float, ...] = (0.9, 0.95, 0.98)

HEADLINE: dict[str, Any] = {
    "L": 12288,
    "heads": 8,
    "d": 64,
    "sparsity": 0.95,
    "pattern": "band_and_decay",
    "causal": False,
    "batch": 1,
}
"""The issue's target case: sparse fwd+bwd at L = 12288, 95% band-and-decay, 8 heads, d = 64, bf16."""
TARGET_SPEEDUP = 2.0  # sgk fwd+bwd at least this much faster than dense materialised attention
TARGET_MEMORY = 10.0  # ... and at least this many times less peak memory
FLEX_BLOCK = 128

_MB = 1e6


# -- cases ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttentionCase:
    """One attention problem. ``*_full`` keep the sizes before the CPU reduction (0: same)."""

    L: int
    heads: int
    d: int
    sparsity: float
    mode: str  # "fwd" | "fwdbwd"
    pattern: str = "band_and_decay"
    causal: bool = False
    batch: int = 1
    headline: bool = False
    L_full: int = 0
    heads_full: int = 0
    d_full: int = 0

    def __post_init__(self) -> None:
        for name in ("L", "heads", "d"):
            if not getattr(self, f"{name}_full"):
                object.__setattr__(self, f"{name}_full", getattr(self, name))

    @property
    def config_key(self) -> tuple:
        """What the inputs depend on (cases differing only in mode share them)."""
        return (self.L, self.heads, self.d, self.sparsity, self.pattern, self.causal, self.batch)

    @property
    def topology_key(self) -> str:
        return f"{self.pattern}/L={self.L}/s={self.sparsity:g}/causal={int(self.causal)}"

    @property
    def group(self) -> str:
        return self.mode

    @property
    def label(self) -> str:
        extra = (" causal" if self.causal else "") + (f" b={self.batch}" if self.batch != 1 else "")
        return f"L={self.L} h={self.heads} d={self.d} s={self.sparsity:g} {self.pattern}{extra}"

    @property
    def name(self) -> str:
        return f"{self.label} {self.mode}"

    short_name = name

    def matches(self, text: str | None) -> bool:
        """Case-insensitive substring match against the name (plus ``headline`` for the headline case)."""
        if not text:
            return True
        hay = f"{self.name} {self.pattern} {self.mode}" + (" headline" if self.headline else "")
        return text.lower() in hay.lower()

    def is_headline(self) -> bool:
        return all(getattr(self, k) == v for k, v in HEADLINE.items())

    def reduced(self, L_cap: int, heads_cap: int, d_cap: int) -> "AttentionCase":
        """The case at CPU size: L scaled down by 64 into [L_cap/4, L_cap] (kept when <= L_cap),
        heads and d capped."""
        L = self.L if self.L <= L_cap else min(L_cap, max(L_cap // 4, self.L // 64))
        return dataclasses.replace(
            self,
            L=L,
            heads=min(self.heads, heads_cap),
            d=min(self.d, d_cap),
            L_full=self.L_full,
            heads_full=self.heads_full,
            d_full=self.d_full,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "L": self.L,
            "heads": self.heads,
            "d": self.d,
            "batch": self.batch,
            "sparsity_nominal": self.sparsity,
            "pattern": self.pattern,
            "causal": self.causal,
            "mode": self.mode,
            "headline": self.headline,
            "L_full": self.L_full,
            "heads_full": self.heads_full,
            "d_full": self.d_full,
        }


# -- topologies, masks, blocks ----------------------------------------------------------------------
def _local_window(L: int, sparsity: float, causal: bool) -> int:
    if causal:  # row i keeps min(i, w) + 1 keys; allowed ≈ L/2
        return max(0, round((1.0 - sparsity) * (L + 1) / 2 - 1))
    return max(0, round(((1.0 - sparsity) * L - 1) / 2))


def _strided_stride(L: int, sparsity: float, causal: bool) -> int:
    """The stride whose estimated density is closest to 1 − sparsity (ties: the larger stride)."""
    target = (1.0 - sparsity) * L
    best, best_err = 1, math.inf
    for s in range(1, L + 1):
        est = min(L, 2 * s - 1 + L / s)  # |i − j| < s, plus every s-th key
        if causal:
            est /= 2
        err = abs(est - target)
        if err <= best_err:
            best, best_err = s, err
    return best


def build_topology(
    L: int, sparsity: float, pattern: str = "band_and_decay", *, causal: bool = False, seed: int = 0, device: Any = None
) -> CSRMatrix:
    """The L×L topology of a case. ``band_and_decay`` and ``random`` take the sparsity exactly;
    ``local`` (window) and ``strided`` (stride) are sized to approach it (the actual sparsity is
    reported)."""
    from .. import patterns

    if pattern == "band_and_decay":
        return patterns.band_and_decay(L, sparsity, causal=causal, seed=seed, device=device)
    if pattern == "random":
        return patterns.random_uniform(L, sparsity, causal=causal, seed=seed, device=device)
    if pattern == "local":
        return patterns.local_band(L, _local_window(L, sparsity, causal), causal=causal, device=device)
    if pattern == "strided":
        return patterns.strided(L, _strided_stride(L, sparsity, causal), causal=causal, device=device)
    raise ValueError(f"unknown pattern {pattern!r}; choose from {', '.join(PATTERNS)}")


def dense_mask(topology: CSRMatrix) -> torch.Tensor:
    """The topology as an L×Lk bool tensor on its device (True where a pair is computed)."""
    m, n = topology.shape
    mask = torch.zeros(m, n, dtype=torch.bool, device=topology.device)
    mask[topology.row_indices.long(), topology.column_indices.long()] = True
    return mask


def topology_blocks(topology: CSRMatrix, block_size: int | tuple[int, int] = FLEX_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Which ``block_q × block_kv`` tiles of the topology hold pairs, from the CSR alone.

    Returns ``(any, full)``: bool tensors of shape (ceil(L/bq), ceil(Lk/bkv)); ``any`` marks the
    tiles a block-sparse kernel must compute (at least one pair in the topology), ``full`` those
    where every pair of the (possibly edge-clipped) tile is in it (no mask needed there).
    """
    bq, bk = (block_size, block_size) if isinstance(block_size, int) else block_size
    m, n = topology.shape
    nbq, nbk = -(-m // bq), -(-n // bk)
    rb = topology.row_indices.long() // bq
    cb = topology.column_indices.long() // bk
    counts = torch.bincount(rb * nbk + cb, minlength=nbq * nbk).reshape(nbq, nbk)
    rows_in = torch.clamp(m - torch.arange(nbq, device=counts.device) * bq, max=bq)
    cols_in = torch.clamp(n - torch.arange(nbk, device=counts.device) * bk, max=bk)
    capacity = rows_in[:, None] * cols_in[None, :]
    return counts > 0, counts == capacity


def build_block_mask(mask: torch.Tensor, block_size: int = FLEX_BLOCK):
    """A FlexAttention ``BlockMask`` for an exact L×Lk bool mask: ``create_block_mask`` with a
    ``mask_mod`` that looks the pair up in ``mask`` (broadcast over batch and heads), so a tile is
    computed when any of its pairs is set and masked exactly inside partial tiles."""
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(b, h, q_idx, kv_idx):
        return mask[q_idx, kv_idx]

    L, Lk = mask.shape
    return create_block_mask(mask_mod, None, None, L, Lk, device=mask.device, BLOCK_SIZE=block_size), mask_mod


# -- inputs ---------------------------------------------------------------------------------------
@dataclass
class AttentionInputs:
    """q, k, v and the output gradient at the run's dtype (batch, heads, L, d), the topology on the
    device, the dense mask (built on first use) and the float32 references (cached)."""

    case: AttentionCase
    topology: CSRMatrix
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    grad: torch.Tensor
    scale: float
    _cache: dict[str, Any] = field(default_factory=dict)

    def mask(self) -> torch.Tensor:
        if "mask" not in self._cache:
            self._cache["mask"] = dense_mask(self.topology)
        return self._cache["mask"]

    def absent(self) -> torch.Tensor:
        """~mask (what dense attention fills with -inf), built once."""
        if "absent" not in self._cache:
            self._cache["absent"] = ~self.mask()
        return self._cache["absent"]

    def leaves(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v as leaves requiring grad (same storage)."""
        if "leaves" not in self._cache:
            self._cache["leaves"] = tuple(t.detach().requires_grad_(True) for t in (self.q, self.k, self.v))
        return self._cache["leaves"]

    def reference(self, grads: bool) -> dict[str, torch.Tensor]:
        """Dense attention in float32 from the rounded inputs, one (batch, head) at a time (TF32 off):
        ``out`` and, with ``grads``, ``dq``, ``dk``, ``dv``."""
        have = self._cache.get("ref")
        if have is not None and (not grads or "dq" in have):
            return have
        q, k, v, g = self.q, self.k, self.v, self.grad
        absent = self.absent()
        outs = {n: torch.empty(q.shape[:-1] + (t.shape[-1],), dtype=torch.float32, device=q.device) for n, t in (("out", v), ("dq", q), ("dk", k), ("dv", v))}
        if not grads:
            outs = {"out": outs["out"]}
        with tf32_matmul(False):
            for b in range(q.shape[0]):
                for h in range(q.shape[1]):
                    qi, ki, vi = (t[b, h].float().requires_grad_(grads) for t in (q, k, v))
                    with torch.set_grad_enabled(grads):
                        s = (qi @ ki.T) * self.scale
                        p = torch.softmax(s.masked_fill(absent, float("-inf")), dim=-1)
                        o = p @ vi
                    outs["out"][b, h] = o.detach()
                    if grads:
                        dq, dk, dv = torch.autograd.grad(o, (qi, ki, vi), g[b, h].float())
                        outs["dq"][b, h], outs["dk"][b, h], outs["dv"][b, h] = dq, dk, dv
                    del s, p, o
        self._cache["ref"] = outs
        return outs

    def errors(self, got: Any) -> dict[str, float]:
        """Relative L2 errors of an implementation's result against :meth:`reference`: ``out``
        for fwd (a tensor), ``out``, ``dq``, ``dk``, ``dv`` for fwdbwd (a 4-tuple)."""
        if isinstance(got, torch.Tensor):
            return {"out": relative_error(got, self.reference(False)["out"])}
        ref = self.reference(True)
        return {n: relative_error(t, ref[n]) for n, t in zip(("out", "dq", "dk", "dv"), got)}


# -- implementations ------------------------------------------------------------------------------
@dataclass
class AttnPrepared:
    """A ready forward (q, k, v) → out; ``checked``: compare with the reference; ``note``: shown."""

    forward: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    checked: bool = True
    context: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    note: str | None = None


def _timed_fn(inp: AttentionInputs, prepared: AttnPrepared, mode: str) -> Callable[[], Any]:
    fwd = prepared.forward
    if mode == "fwd":
        q, k, v = inp.q, inp.k, inp.v
        return lambda: fwd(q, k, v)
    leaves, grad = inp.leaves(), inp.grad

    def fwdbwd():
        out = fwd(*leaves)
        dq, dk, dv = torch.autograd.grad(out, leaves, grad)
        return out, dq, dk, dv

    return fwdbwd


def _sgk(bench: "AttentionBenchmark", inp: AttentionInputs) -> AttnPrepared:
    import sgk

    topo, scale, causal = inp.topology, inp.scale, inp.case.causal
    return AttnPrepared(lambda q, k, v: sgk.attention(q, k, v, topo, scale=scale, causal=causal))


def _dense(bench: "AttentionBenchmark", inp: AttentionInputs) -> AttnPrepared:
    absent, scale = inp.absent(), inp.scale

    def forward(q, k, v):
        s = torch.matmul(q, k.transpose(-2, -1))
        s.mul_(scale)  # in place: matmul's backward does not need its output
        s.masked_fill_(absent, float("-inf"))
        return torch.matmul(torch.softmax(s, dim=-1), v)

    return AttnPrepared(forward, context=lambda: tf32_matmul(False))


def _sdpa(bench: "AttentionBenchmark", inp: AttentionInputs) -> AttnPrepared:
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    scale, causal = inp.scale, inp.case.causal

    def forward(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    note = "full attention (all pairs), not checked"
    flash = lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)  # noqa: E731
    try:
        with flash(), torch.no_grad():
            forward(inp.q, inp.k, inp.v)
        context = flash
        note += "; flash backend"
    except RuntimeError as e:
        context = contextlib.nullcontext
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        note += f"; flash backend unavailable ({first[:120]}): default backend"
    return AttnPrepared(forward, checked=False, context=context, note=note)


class Unavailable(RuntimeError):
    """An implementation that cannot run here (reported as ``unavailable``, not as an error)."""


def _flex(bench: "AttentionBenchmark", inp: AttentionInputs) -> AttnPrepared:
    try:
        from torch.nn.attention.flex_attention import flex_attention
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"torch.nn.attention.flex_attention: {type(e).__name__}: {e}") from None
    if inp.case.mode == "fwdbwd" and not inp.q.is_cuda:
        raise Unavailable("FlexAttention has no backward on the CPU")
    block_mask, _ = build_block_mask(inp.mask(), bench.flex_block)
    fn = bench.flex_function() if inp.q.is_cuda else flex_attention
    scale = inp.scale
    note = f"{bench.flex_block}-blocks" + ("" if inp.q.is_cuda and bench.flex_compile else ", uncompiled (CPU reference path)")
    return AttnPrepared(lambda q, k, v: fn(q, k, v, block_mask=block_mask, scale=scale), note=note)


# -- results --------------------------------------------------------------------------------------
@dataclass
class AttnImplResult(ImplResult):
    """One implementation on one case: :class:`ImplResult` plus peak memory and per-tensor errors.
    Status: ok, failed (check), error, oom, unavailable."""

    peak_mb: float | None = None
    errors: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["peak_mb"] = self.peak_mb
        d["errors"] = {k: (v if math.isfinite(v) else None) for k, v in self.errors.items()} if self.errors else None
        return d


@dataclass
class AttentionResult:
    """All implementations on one case."""

    case: AttentionCase
    impls: dict[str, AttnImplResult] = field(default_factory=dict)
    error: str | None = None
    nnz: int | None = None  # pairs of the topology (per batch entry and head)
    sparsity: float | None = None  # actual: 1 − nnz / L²
    block_density: float | None = None  # share of flex's 128-blocks that hold a pair
    mask_mb: float | None = None  # the dense bool mask of dense/flex (outside their peaks)
    tflops: float | None = None  # sgk useful TFLOP/s (4·nnz·d fwd, 12·nnz·d fwd+bwd, per head)

    def ms(self, name: str) -> float | None:
        r = self.impls.get(name)
        return r.ms if r is not None and r.ok else None

    def peak(self, name: str) -> float | None:
        r = self.impls.get(name)
        return r.peak_mb if r is not None and r.ok else None

    def speedup(self, baseline: str, over: str = "sgk") -> float | None:
        """time(baseline) / time(sgk): > 1 means sgk is faster."""
        a, b = self.ms(over), self.ms(baseline)
        return b / a if a and b else None

    def memory_ratio(self, baseline: str, over: str = "sgk") -> float | None:
        """peak(baseline) / peak(sgk): > 1 means sgk uses less memory."""
        a, b = self.peak(over), self.peak(baseline)
        return b / a if a and b else None

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        s = self.impls.get("sgk")
        if s is not None and s.status != "ok":
            return s.status
        return "ok" if all(r.status == "ok" for r in self.impls.values()) else "partial"

    def to_dict(self, baselines: Sequence[str]) -> dict[str, Any]:
        return {
            **self.case.to_dict(),
            "nnz": self.nnz,
            "pairs": self.nnz * self.case.batch * self.case.heads if self.nnz is not None else None,
            "sparsity": self.sparsity,
            "flex_block_density": self.block_density,
            "mask_mb": self.mask_mb,
            "status": self.status,
            "error": self.error,
            "impls": {k: v.to_dict() for k, v in self.impls.items()},
            "sgk_tflops": self.tflops,
            "speedup": {b: self.speedup(b) for b in baselines},
            "memory_ratio": {b: self.memory_ratio(b) for b in baselines},
        }


# -- the benchmark --------------------------------------------------------------------------------
def _impl(name: str, help: str, baseline: bool = True) -> Impl:
    # Impl.prepare is not used by this kind (see AttentionBenchmark.preparers); kept for listings.
    return Impl(name, help, prepare=lambda inputs, dtype: None, baseline=baseline)  # type: ignore[arg-type,return-value]


@register_benchmark
@dataclass
class AttentionBenchmark(Benchmark):
    """Sparse attention (fwd and fwd+bwd) on long sequences: sgk against dense materialised
    attention, SDPA flash and FlexAttention; time and peak memory. Example::

        from sgk.bench.attention import AttentionBenchmark, format_attention_table, format_headline
        bench = AttentionBenchmark(L=(12288,), sparsity=(0.95,), mode="fwdbwd")
        bench.run()
        print(format_attention_table(bench)); print(format_headline(bench))
    """

    kind: ClassVar[str] = "attention"
    help: ClassVar[str] = "sparse attention (SDDMM → softmax → SpMM), fwd and fwd+bwd, vs dense / SDPA-flash / FlexAttention"
    impls: ClassVar[dict[str, Impl]] = {
        "sgk": _impl("sgk", "sgk.attention(q, k, v, topology) at --dtype", baseline=False),
        "dense": _impl("dense", "materialised: q·kᵀ·scale, masked_fill(-inf) with the topology as a dense bool mask, softmax, ·v"),
        "sdpa": _impl("sdpa", "F.scaled_dot_product_attention, no mask (all pairs), flash backend forced (fallback noted)"),
        "flex": _impl("flex", "torch.compile(flex_attention) with create_block_mask at 128-blocks + exact mask_mod"),
    }
    preparers: ClassVar[dict[str, Callable[["AttentionBenchmark", AttentionInputs], AttnPrepared]]] = {
        "sgk": _sgk,
        "dense": _dense,
        "sdpa": _sdpa,
        "flex": _flex,
    }
    default_impls: ClassVar[tuple[str, ...]] = ("sgk", "dense", "sdpa", "flex")
    suites: ClassVar[tuple[str, ...]] = ("grid",)

    suite: str = "grid"
    dtype: str = "bf16"
    L: tuple[int, ...] = DEFAULT_L
    heads: tuple[int, ...] = DEFAULT_HEADS
    d: tuple[int, ...] = DEFAULT_D
    sparsity: tuple[float, ...] = DEFAULT_SPARSITY
    pattern: str = "band_and_decay"
    causal: bool = False
    batch: int = 1
    mode: str = "both"
    headline: bool | None = None  # add the headline case; None: only with the default grid (where it is)
    flex_block: int = FLEX_BLOCK
    flex_compile: bool = True
    cpu_cases: int | None = None  # every case runs on the CPU path (they are small there)
    cpu_L_cap: int = 256
    cpu_heads_cap: int = 2
    cpu_d_cap: int = 16
    results: list[AttentionResult] = field(default_factory=list)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.L, self.heads, self.d = (tuple(int(x) for x in _seq(v)) for v in (self.L, self.heads, self.d))
        self.sparsity = tuple(float(x) for x in _seq(self.sparsity))
        for name in ("L", "heads", "d"):
            vals = getattr(self, name)
            if not vals or any(x <= 0 for x in vals):
                raise ValueError(f"attention: {name} must be positive integers, got {vals}")
        if not self.sparsity or any(not 0.0 <= s < 1.0 for s in self.sparsity):
            raise ValueError(f"attention: sparsity must be in [0, 1), got {self.sparsity}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"attention: unknown pattern {self.pattern!r}; choose from {', '.join(PATTERNS)}")
        if self.mode not in MODE_CHOICES:
            raise ValueError(f"attention: mode must be one of {', '.join(MODE_CHOICES)}, got {self.mode!r}")
        if self.batch <= 0:
            raise ValueError(f"attention: batch must be positive, got {self.batch}")
        if self.flex_block <= 0:
            raise ValueError(f"attention: flex block must be positive, got {self.flex_block}")
        if self.timer != "do_bench":
            raise ValueError("attention: only the do_bench timer is supported (autograd and torch.compile inside)")
        super().__post_init__()
        self._inputs: AttentionInputs | None = None
        self._flex_fn: Callable | None = None

    # -- configuration --------------------------------------------------------------------------
    @property
    def modes(self) -> tuple[str, ...]:
        return MODES if self.mode == "both" else (self.mode,)

    @property
    def default_grid(self) -> bool:
        return (
            self.L == DEFAULT_L
            and self.heads == DEFAULT_HEADS
            and self.d == DEFAULT_D
            and self.sparsity == DEFAULT_SPARSITY
            and self.pattern == HEADLINE["pattern"]
            and self.causal == HEADLINE["causal"]
            and self.batch == HEADLINE["batch"]
        )

    def get_configs(self) -> list[AttentionCase]:  # type: ignore[override]
        """The grid L × heads × d × sparsity × modes (L outermost), the headline case marked (and
        added when :attr:`headline` asks for it), filtered, limited; on the CPU reduced in size."""
        cases: list[AttentionCase] = []
        for L, h, d, s in itertools.product(self.L, self.heads, self.d, self.sparsity):
            for mode in self.modes:
                c = AttentionCase(L, h, d, s, mode, self.pattern, self.causal, self.batch)
                cases.append(dataclasses.replace(c, headline=c.is_headline()))
        include = self.headline if self.headline is not None else self.default_grid
        if include and not any(c.headline for c in cases):
            hl = {k: v for k, v in HEADLINE.items()}
            for mode in self.modes:
                cases.append(AttentionCase(mode=mode, headline=True, **hl))
        if self.filter:
            kept = [c for c in cases if c.matches(self.filter)]
            if not kept:
                raise ValueError(f"--filter {self.filter!r} matches none of the {len(cases)} attention cases")
            cases = kept
        limit = self.limit if self.limit is not None else (None if self.on_gpu else self.cpu_cases)
        if limit is not None:
            cases = cases[:limit]
        if not self.on_gpu:
            seen: dict[tuple, AttentionCase] = {}
            for c in cases:
                r = c.reduced(self.cpu_L_cap, self.cpu_heads_cap, self.cpu_d_cap)
                seen.setdefault(r.config_key + (r.mode,), r)
            cases = list(seen.values())
        return cases

    # -- inputs ---------------------------------------------------------------------------------
    def case_seed(self, case: AttentionCase) -> int:  # type: ignore[override]
        return (zlib.crc32(case.topology_key.encode()) ^ (self.seed * 0x9E3779B1)) & 0x7FFFFFFF

    def inputs(self, case: AttentionCase) -> AttentionInputs:
        """The case's inputs; the last ones are kept, so fwd and fwdbwd of a config share them."""
        if self._inputs is not None and self._inputs.case.config_key == case.config_key:
            self._inputs.case = case
            return self._inputs
        self._inputs = None
        self._free()
        dev = self.torch_device
        seed = self.case_seed(case)
        topo = build_topology(case.L, case.sparsity, case.pattern, causal=case.causal, seed=seed, device=dev)
        gen = torch.Generator(device=dev).manual_seed(seed + 7919 * case.heads + 104729 * case.d + case.batch)
        dt = DTYPES[self.dtype]
        shape = (case.batch, case.heads, case.L, case.d)
        q, k, v, g = (torch.randn(shape, generator=gen, device=dev, dtype=torch.float32).to(dt) for _ in range(4))
        self._inputs = AttentionInputs(case, topo, q, k, v, g, 1.0 / math.sqrt(case.d))
        return self._inputs

    def flex_function(self) -> Callable:
        """flex_attention, compiled once per benchmark (recompiles per shape and mask allowed)."""
        from torch.nn.attention.flex_attention import flex_attention

        if not self.flex_compile:
            return flex_attention
        if self._flex_fn is None:
            import torch._dynamo

            for knob in ("recompile_limit", "cache_size_limit"):
                if hasattr(torch._dynamo.config, knob):
                    setattr(torch._dynamo.config, knob, max(256, getattr(torch._dynamo.config, knob)))
            self._flex_fn = torch.compile(flex_attention, dynamic=False)
        return self._flex_fn

    def useful_flops(self, case: AttentionCase) -> float:  # type: ignore[override]
        """Per pair and head dimension: fwd 4 (q·k, p·v), fwd+bwd 12 (+ dv, dp, dq, dk)."""
        nnz = self._inputs.topology.nnz if self._inputs is not None else 0
        return (4.0 if case.mode == "fwd" else 12.0) * nnz * case.d * case.heads * case.batch

    # -- running --------------------------------------------------------------------------------
    def _free(self) -> None:
        if self.on_gpu:  # (gc.collect costs ~0.1 s once dynamo is loaded: only where memory matters)
            gc.collect()
            torch.cuda.empty_cache()

    def _peak_mb(self, fn: Callable[[], Any]) -> float | None:
        """max_memory_allocated over one run minus what was allocated before it, in MB (GPU only)."""
        if not self.on_gpu:
            return None
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out = fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        del out
        return peak / _MB

    def run_impl(self, name: str, inputs: AttentionInputs) -> AttnImplResult:  # type: ignore[override]
        """Prepare, check, measure memory, then time one implementation; never raises."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*flex_attention called without torch.compile.*")
            warnings.filterwarnings("ignore", message=r"Sparse (CSR tensor support|invariant checks)", category=UserWarning)
            res = self._run_impl_guarded(name, inputs)
        self._free()
        return res

    def _run_impl_guarded(self, name: str, inp: AttentionInputs) -> AttnImplResult:
        tol = TOLERANCES[self.dtype]
        res = AttnImplResult(name, "error", precision=self.dtype, tol=tol)
        oom = False
        try:
            self._run_impl_body(name, inp, res)
        except torch.OutOfMemoryError as e:
            oom = True
            res.status, res.ms, res.peak_mb = "oom", None, None
            res.message = f"out of memory: {_first_line(e)}"[:300]
        except Unavailable as e:
            res.status, res.message = "unavailable", str(e)[:300]
        except Exception as e:  # noqa: BLE001 - one implementation failing must not stop the run
            res.ms, res.peak_mb = None, None
            if name == "flex":  # compile failures, unsupported shapes...: flex is optional
                res.status = "unavailable"
            res.message = f"{type(e).__name__}: {_first_line(e)}"[:300]
        if oom:
            self._free()
        return res

    def _run_impl_body(self, name: str, inp: AttentionInputs, res: AttnImplResult) -> None:
        case = inp.case
        prepared = self.preparers[name](self, inp)
        note = prepared.note
        fn = _timed_fn(inp, prepared, case.mode)
        with prepared.context():
            got = fn()
            if prepared.checked:
                errs = inp.errors(got)
                del got
                res.errors = errs
                res.rel_err = max(errs.values())
                if not res.rel_err <= res.tol:
                    worst = max(errs, key=lambda k: errs[k])
                    res.status = "failed"
                    res.message = f"rel err {res.rel_err:.2e} ({worst}) > tol {res.tol:.0e}"
                    return
            else:
                outs = [got] if isinstance(got, torch.Tensor) else list(got)
                finite = all(bool(torch.isfinite(t).all()) for t in outs)
                del got, outs
                if not finite:
                    res.status, res.message = "failed", "output not finite"
                    return
            self._free()
            res.peak_mb = self._peak_mb(fn)
            res.ms = self.time_ms(fn)
        res.status = "ok"
        res.message = note

    def run_case(self, case: AttentionCase) -> AttentionResult:  # type: ignore[override]
        """Build (or reuse) the inputs and the reference, then run every implementation; never raises."""
        result = AttentionResult(case)
        try:
            inp = self.inputs(case)
            topo = inp.topology
            result.nnz = topo.nnz
            L, Lk = topo.shape
            result.sparsity = 1.0 - topo.nnz / (L * Lk)
            anyb, _ = topology_blocks(topo, self.flex_block)
            result.block_density = float(anyb.float().mean())
            result.mask_mb = L * Lk / _MB
            inp.reference(grads=case.mode == "fwdbwd")
        except Exception as e:  # noqa: BLE001
            result.error = f"inputs: {type(e).__name__}: {_first_line(e)}"[:300]
            self._inputs = None
            self._free()
            return result
        for name in self.impl_names:
            result.impls[name] = self.run_impl(name, inp)
        t = result.ms("sgk")
        if t:
            result.tflops = self.useful_flops(case) / (t * 1e-3) / 1e12
        return result

    def run(self, progress: TextIO | bool | None = True, cases: list[AttentionCase] | None = None) -> list[AttentionResult]:  # type: ignore[override]
        stream = sys.stderr if progress is True else (progress or None)
        cases = self.get_configs() if cases is None else cases
        width = len(str(len(cases)))
        try:
            for i, case in enumerate(cases, 1):
                r = self.run_case(case)
                self.results.append(r)
                if stream is not None:
                    print(f"[{i:>{width}}/{len(cases)}] {self.progress_line(r)}", file=stream, flush=True)
        finally:
            self._inputs = None
            self._free()
        return self.results

    def progress_line(self, r: AttentionResult) -> str:  # type: ignore[override]
        parts = [r.case.name + (" [headline]" if r.case.headline else "")]
        if r.error:
            return f"{parts[0]}  ERROR {r.error}"
        parts.append(f"nnz={r.nnz}")
        for name, ir in r.impls.items():
            if ir.ok:
                s = f"{name} {ir.ms:.3f} ms"
                if ir.peak_mb is not None:
                    s += f" {ir.peak_mb:.0f} MB"
                sp = r.speedup(name) if name != "sgk" else None
                parts.append(s + (f" ({sp:.2f}x)" if sp else ""))
            else:
                parts.append(f"{name} {ir.status.upper()}" + (f" [{ir.message}]" if ir.message else ""))
        return "  ".join(parts)

    # -- command line ---------------------------------------------------------------------------
    cli_epilog: ClassVar[str] = """\
Default grid: L in {4096, 8192, 12288, 16384} x 8 heads x d 64 x sparsity {0.9, 0.95, 0.98},
band-and-decay, non-causal, batch 1, bf16, fwd and fwd+bwd; it holds the headline case (L=12288,
95%, 8 heads, d=64), whose summary states the targets: sgk fwd+bwd >= 2x faster and >= 10x less
peak memory than dense materialised attention, and the ratio to SDPA-flash. Every sgk, dense and
flex result (and fwd+bwd gradients) is checked against float32 dense attention first (bf16: rel
L2 <= 2e-2). Times are do_bench medians; peak memory is max_memory_allocated over one run minus
what was allocated before (inputs, topology and mask excluded), in MB. Without a CUDA GPU the
cases run on the CPU reference path at reduced size (L/64 capped at 256, heads <= 2, d <= 16).
Speedups are time(baseline) / time(sgk): > 1 means sgk is faster.
"""

    @classmethod
    def add_cli_arguments(cls, p: argparse.ArgumentParser) -> None:
        from ..cli import _impl_list, _positive_float, _positive_int

        p.add_argument("--L", type=_int_list, default=DEFAULT_L, metavar="LIST", help=f"sequence lengths (default {_csv(DEFAULT_L)})")
        p.add_argument("--heads", type=_int_list, default=DEFAULT_HEADS, metavar="LIST", help=f"heads (default {_csv(DEFAULT_HEADS)})")
        p.add_argument("--d", type=_int_list, default=DEFAULT_D, metavar="LIST", help=f"head dimensions (default {_csv(DEFAULT_D)})")
        p.add_argument(
            "--sparsity", type=_sparsity_list, default=DEFAULT_SPARSITY, metavar="LIST", help=f"sparsities (default {_csv(DEFAULT_SPARSITY)})"
        )
        p.add_argument("--pattern", choices=list(PATTERNS), default="band_and_decay", help="topology (default band_and_decay)")
        p.add_argument("--causal", action="store_true", help="causal topology (keys at or before the query) and causal SDPA")
        p.add_argument("--batch", type=_positive_int, default=1, help="batch size (default 1)")
        p.add_argument("--dtype", choices=list(DTYPES), default="bf16", help="precision of q, k, v (default bf16)")
        p.add_argument("--mode", choices=list(MODE_CHOICES), default="both", help="fwd, fwdbwd (forward + backward) or both (default)")
        p.add_argument(
            "--impl",
            type=_impl_list(list(cls.impls)),
            default=tuple(cls.default_impls),
            metavar="LIST",
            help=f"comma-separated implementations from {{{','.join(cls.impls)}}} (default {','.join(cls.default_impls)})",
        )
        p.add_argument(
            "--headline",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="add the headline case (L=12288, 95%%, 8 heads, d=64) to a custom grid (default: only the default grid, which holds it)",
        )
        p.add_argument("--flex-block", type=_positive_int, default=FLEX_BLOCK, metavar="N", help="FlexAttention block size (default 128)")
        p.add_argument("--out", metavar="PATH", help="write provenance, per-case results and the headline summary as JSON")
        p.add_argument("--plot", metavar="PATH", help="write a PNG: time vs L per implementation (one panel per mode) and peak memory")
        p.add_argument("--limit", type=_positive_int, metavar="N", help="run only the first N cases (after --filter)")
        p.add_argument("--filter", metavar="SUBSTR", help="keep cases whose name contains SUBSTR, e.g. 'L=8192', 's=0.95', fwdbwd, headline")
        p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto", help="where to run (default: CUDA if available)")
        p.add_argument("--seed", type=int, default=0, help="seed for topologies and values (default 0)")
        p.add_argument("--warmup", type=_positive_float, default=25.0, metavar="MS", help="do_bench warm-up time in ms (default 25)")
        p.add_argument("--rep", type=_positive_float, default=100.0, metavar="MS", help="do_bench measuring time in ms (default 100)")
        p.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines on stderr")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "AttentionBenchmark":
        return cls(
            dtype=args.dtype,
            impl_names=args.impl,
            limit=args.limit,
            filter=args.filter,
            device=args.device,
            seed=args.seed,
            warmup=args.warmup,
            rep=args.rep,
            L=args.L,
            heads=args.heads,
            d=args.d,
            sparsity=args.sparsity,
            pattern=args.pattern,
            causal=args.causal,
            batch=args.batch,
            mode=args.mode,
            headline=args.headline,
            flex_block=args.flex_block,
        )

    @classmethod
    def cli_run(cls, args: argparse.Namespace, argv: list[str], out: TextIO, err: TextIO) -> int:
        """``sgk bench attention``: run, print the table and the headline summary, write JSON/PNG.
        Exit status 0; 1 when an sgk case failed its check, raised or ran out of memory; 130 when
        interrupted (the finished cases are still reported)."""
        from .env import collect_environment

        parser = args._parser
        try:
            bench = cls.from_args(args)
            cases = bench.get_configs()
        except ValueError as e:
            parser.error(str(e))
        from ..cli import check_output_paths

        check_output_paths(args, parser)
        env = collect_environment(argv)
        device = env["gpu"] if bench.on_gpu else "CPU (reference path)"
        print(
            f"sgk bench attention: {len(cases)} cases, {bench.pattern}{' causal' if bench.causal else ''}, batch {bench.batch}, "
            f"dtype {bench.dtype}, modes {','.join(bench.modes)}, impls {','.join(bench.impl_names)} on {device} "
            f"(torch {torch.__version__}, triton {env['triton']})",
            file=out,
        )
        if not bench.on_gpu:
            print(CPU_NOTICE, file=out)
        out.flush()
        interrupted = False
        try:
            bench.run(progress=None if args.quiet else err, cases=cases)
        except KeyboardInterrupt:
            interrupted = True
            print(f"\ninterrupted: reporting the {len(bench.results)} finished cases", file=err)
        print(file=out)
        print(format_attention_table(bench), file=out)
        print(file=out)
        print(format_headline(bench), file=out)
        failures = _format_failures(bench)
        if failures:
            print("\nnot ok:\n" + failures, file=out)
        from ..cli import write_output

        written = True
        if args.out:
            from .report import write_json

            written &= write_output(args.out, "--out", lambda: write_json(args.out, attention_json(bench, env)), out)
        if args.plot:
            written &= write_output(
                args.plot, "--plot", lambda: plot_attention(bench, args.plot, title_device=env["gpu"] if bench.on_gpu else None), out)
        if interrupted:
            return 130
        return 1 if not written or any(r.status in ("failed", "error", "oom") for r in bench.results) else 0


# -- argument helpers -------------------------------------------------------------------------------
def _seq(v: Any) -> tuple:
    if isinstance(v, (int, float)):
        return (v,)
    return tuple(v)


def _csv(vals: Sequence[Any]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return tuple(dict.fromkeys(vals))


def _sparsity_list(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sparsities in [0, 1), got {text!r}") from None
    if not vals or any(not 0.0 <= v < 1.0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected comma-separated sparsities in [0, 1), got {text!r}")
    return tuple(dict.fromkeys(vals))


def _first_line(e: BaseException) -> str:
    s = str(e)
    return s.splitlines()[0] if s else type(e).__name__


# -- report ---------------------------------------------------------------------------------------
def _cell_ms(r: AttentionResult, name: str) -> str:
    ir = r.impls.get(name)
    if ir is None:
        return "-"
    if ir.ok:
        return f"{ir.ms:.3f}"
    return {"failed": "FAIL", "oom": "OOM", "unavailable": "n/a", "error": "ERR"}.get(ir.status, ir.status)


def _cell_mb(r: AttentionResult, name: str) -> str:
    ir = r.impls.get(name)
    if ir is None or not ir.ok:
        return _cell_ms(r, name) if ir is not None else "-"
    return f"{ir.peak_mb:.0f}" if ir.peak_mb is not None else "-"


def _x(v: float | None) -> str:
    return f"{v:.2f}x" if v is not None else "-"


def format_attention_table(bench: AttentionBenchmark) -> str:
    """One row per case: L, heads, d, sparsity (nominal / actual), nnz, mode, ms and peak MB per
    implementation, speedup of sgk over each baseline and the memory ratio dense/sgk."""
    from .report import _render

    names = bench.impl_names
    header = ["L", "heads", "d", "sparsity", "actual", "nnz", "mode"]
    header += [f"{n} ms" for n in names] + [f"{n} MB" for n in names]
    has_sgk = "sgk" in names
    if has_sgk:
        header += ["sgk TFLOP/s"] + [f"vs {b}" for b in bench.baselines]
        if "dense" in names:
            header.append("mem dense/sgk")
    header.append("status")
    rows = []
    for r in bench.results:
        c = r.case
        row = [str(c.L), str(c.heads), str(c.d), f"{c.sparsity:g}", f"{r.sparsity:.4f}" if r.sparsity is not None else "-"]
        row += [str(r.nnz) if r.nnz is not None else "-", c.mode + ("*" if c.headline else "")]
        row += [_cell_ms(r, n) for n in names] + [_cell_mb(r, n) for n in names]
        if has_sgk:
            row += [f"{r.tflops:.3g}" if r.tflops else "-"] + [_x(r.speedup(b)) for b in bench.baselines]
            if "dense" in names:
                row.append(_x(r.memory_ratio("dense")))
        row.append(r.status)
        rows.append(row)
    title = (
        f"attention: {bench.pattern}{' causal' if bench.causal else ''}, batch {bench.batch}, {bench.dtype}"
        f"{'' if bench.on_gpu else ', CPU reference path (reduced sizes, no memory)'}; * = headline case; "
        "vs X = time(X) / time(sgk)"
    )
    return title + "\n" + _render(header, rows, left=0)


def _headline_results(bench: AttentionBenchmark) -> dict[str, AttentionResult]:
    out: dict[str, AttentionResult] = {}
    for r in bench.results:
        if r.case.headline:
            out[r.case.mode] = r
    return out


def headline_summary(bench: AttentionBenchmark) -> dict[str, Any]:
    """Per mode run: the headline case's times, memories and ratios, and (for fwdbwd) whether the
    targets (>= 2x faster, >= 10x less memory than dense) are met. ``evaluated`` is False on the
    CPU path (reduced sizes) and when the case was not run."""
    out: dict[str, Any] = {
        "case": {**HEADLINE, "dtype": bench.dtype},
        "targets": {"speedup_vs_dense": TARGET_SPEEDUP, "memory_ratio_vs_dense": TARGET_MEMORY, "mode": "fwdbwd", "dtype": "bf16"},
    }
    for mode, r in _headline_results(bench).items():
        entry: dict[str, Any] = {"name": r.case.name, "status": r.status}
        for n in bench.impl_names:
            ir = r.impls.get(n)
            entry[n] = {"ms": r.ms(n), "peak_mb": r.peak(n), "status": ir.status if ir else None, "note": ir.message if ir else None}
        for b in bench.baselines:
            entry[f"speedup_vs_{b}"] = r.speedup(b)
            entry[f"memory_ratio_vs_{b}"] = r.memory_ratio(b)
        full = bench.on_gpu and r.case.L == r.case.L_full and r.case.heads == r.case.heads_full and r.case.d == r.case.d_full
        entry["evaluated"] = bool(full and mode == "fwdbwd" and bench.dtype == "bf16")
        if entry["evaluated"]:
            sp, mem = r.speedup("dense"), r.memory_ratio("dense")
            entry["speedup_met"] = sp is not None and sp >= TARGET_SPEEDUP
            entry["memory_met"] = mem is not None and mem >= TARGET_MEMORY
        out[mode] = entry
    return out


def format_headline(bench: AttentionBenchmark, summary: dict[str, Any] | None = None) -> str:
    """The headline case in words: times and memory of each implementation, the two targets against
    dense (fwd+bwd), and the ratio to SDPA-flash and FlexAttention, honestly."""
    s = summary if summary is not None else headline_summary(bench)
    hl = f"L={HEADLINE['L']}, {HEADLINE['sparsity']:.0%} {HEADLINE['pattern']}, {HEADLINE['heads']} heads, d={HEADLINE['d']}, {bench.dtype}"
    runs = [m for m in MODES if m in s]
    if not runs:
        return f"headline ({hl}): not run (it is in the default grid; add it with --headline)"
    lines = []
    for mode in runs:
        e = s[mode]
        r = _headline_results(bench)[mode]
        what = "forward+backward" if mode == "fwdbwd" else "forward"
        size = "" if r.case.L == r.case.L_full else f" [CPU reference path at L={r.case.L}, h={r.case.heads}, d={r.case.d}: not the target]"
        lines.append(f"headline {what} ({hl}){size}:")
        cells = []
        for n in bench.impl_names:
            ir = r.impls.get(n)
            if ir is not None and ir.ok:
                mem = f", {ir.peak_mb:.0f} MB" if ir.peak_mb is not None else ""
                cells.append(f"{n} {ir.ms:.3f} ms{mem}")
            elif ir is not None:
                cells.append(f"{n} {ir.status.upper()}")
        lines.append("  " + " | ".join(cells))
        if "sgk" not in bench.impl_names:
            continue
        sp, mem = r.speedup("dense"), r.memory_ratio("dense")
        if "dense" in bench.impl_names:
            if e.get("evaluated"):
                lines.append(
                    f"  vs dense materialised: {_x(sp)} faster (target >= {TARGET_SPEEDUP:g}x: {'MET' if e['speedup_met'] else 'NOT MET'}), "
                    f"{_x(mem)} less peak memory (target >= {TARGET_MEMORY:g}x: {'MET' if e['memory_met'] else 'NOT MET'})"
                )
            else:
                why = "targets are for fwd+bwd in bf16 on the GPU" if bench.on_gpu else "CPU path: targets not evaluated"
                lines.append(f"  vs dense materialised: {_x(sp)} time ratio, {_x(mem)} memory ratio ({why})")
        if "sdpa" in bench.impl_names:
            ratio = r.speedup("sdpa")
            pairs = f"SDPA computes all {r.case.L}² pairs, {1 / (1 - r.sparsity):.0f}x sgk's" if r.sparsity is not None and r.sparsity < 1 else ""
            if ratio is None:
                lines.append(f"  vs SDPA: not timed ({r.impls['sdpa'].status})")
            else:
                verdict = f"sgk is {ratio:.2f}x faster" if ratio >= 1 else f"sgk is {1 / ratio:.2f}x SLOWER"
                note = r.impls["sdpa"].message or ""
                backend = "flash" if "flash backend" in note and "unavailable" not in note else "default backend"
                mem_s = r.memory_ratio("sdpa")
                lines.append(
                    f"  vs SDPA ({backend}): {verdict} (time sdpa/sgk = {ratio:.2f}x; memory sdpa/sgk = {_x(mem_s)}; {pairs})"
                )
        if "flex" in bench.impl_names:
            ratio = r.speedup("flex")
            if ratio is None:
                ir = r.impls["flex"]
                lines.append(f"  vs FlexAttention: not timed ({ir.status}{': ' + ir.message if ir.message else ''})")
            else:
                verdict = f"sgk is {ratio:.2f}x faster" if ratio >= 1 else f"sgk is {1 / ratio:.2f}x slower"
                bd = f", {r.block_density:.1%} of {bench.flex_block}-blocks computed" if r.block_density is not None else ""
                lines.append(f"  vs FlexAttention: {verdict} (memory flex/sgk = {_x(r.memory_ratio('flex'))}{bd})")
    return "\n".join(lines)


def _format_failures(bench: AttentionBenchmark) -> str:
    """One line per failed, erroring or out-of-memory implementation; unavailable ones once per
    (implementation, reason) with a count."""
    lines = []
    unavailable: dict[tuple[str, str | None], int] = {}
    for r in bench.results:
        if r.error:
            lines.append(f"{r.case.name}: {r.error}")
        for name, ir in r.impls.items():
            if ir.status == "unavailable":
                unavailable[(name, ir.message)] = unavailable.get((name, ir.message), 0) + 1
            elif ir.status != "ok":
                lines.append(f"{r.case.name}: {name} {ir.status}: {ir.message}")
    for (name, msg), n in unavailable.items():
        lines.append(f"{name} unavailable on {n} case{'s' if n > 1 else ''}: {msg}")
    return "\n".join(lines)


def attention_json(bench: AttentionBenchmark, environment: dict[str, Any]) -> dict[str, Any]:
    """The ``--out`` document: provenance, configuration, per-case results and the headline summary."""
    from .report import SCHEMA_VERSION, _timer_name

    return {
        "schema": SCHEMA_VERSION,
        "benchmark": bench.kind,
        "provenance": {**environment, "dtype": bench.dtype, "suite": bench.suite},
        "config": {
            "kind": bench.kind,
            "dtype": bench.dtype,
            "L": list(bench.L),
            "heads": list(bench.heads),
            "d": list(bench.d),
            "sparsity": list(bench.sparsity),
            "pattern": bench.pattern,
            "causal": bench.causal,
            "batch": bench.batch,
            "modes": list(bench.modes),
            "impls": list(bench.impl_names),
            "impl_help": {n: bench.impls[n].help for n in bench.impl_names},
            "flex_block": bench.flex_block,
            "device": str(bench.torch_device),
            "reduced_cpu_path": not bench.on_gpu,
            "filter": bench.filter,
            "limit": bench.limit,
            "seed": bench.seed,
            "warmup_ms": bench.warmup,
            "rep_ms": bench.rep,
            "timer": _timer_name(bench),
            "tolerance": TOLERANCES[bench.dtype],
            "check": "rel L2 vs dense attention in float32 from the same rounded inputs (out; fwdbwd also dq, dk, dv)",
            "peak_memory": "max_memory_allocated over one untimed run minus memory allocated before (MB = 1e6 bytes)",
        },
        "cases": [r.to_dict(bench.baselines) for r in bench.results],
        "headline": headline_summary(bench),
        "warnings": list(bench.warnings),
    }


# -- plot -----------------------------------------------------------------------------------------
_COLORS = {"sgk": "tab:red", "dense": "tab:blue", "sdpa": "tab:green", "flex": "tab:purple"}
_LINESTYLES = ("-", "--", ":", "-.")
_IMPL_MARKERS = {"sgk": "o", "dense": "s", "sdpa": "^", "flex": "D"}


def plot_attention(bench: AttentionBenchmark, path: str, title_device: str | None = None) -> None:
    """PNG: time vs L per implementation (log y), one panel per mode, and a panel of peak memory
    (fwd+bwd when run, else fwd). Colour = implementation, line style = sparsity (and heads/d
    when they vary)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    modes = [m for m in MODES if any(r.case.mode == m for r in bench.results)] or list(bench.modes)
    mem_mode = "fwdbwd" if "fwdbwd" in modes else modes[0]
    panels = [(m, "time") for m in modes] + [(mem_mode, "memory")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels) + 0.5, 4.3), squeeze=False)
    variants = sorted({(r.case.sparsity, r.case.heads, r.case.d) for r in bench.results})
    vary_hd = len({(h, d) for _, h, d in variants}) > 1
    styles = {v: _LINESTYLES[i % len(_LINESTYLES)] for i, v in enumerate(variants)}

    def vlabel(v):
        s, h, d = v
        return f"s={s:g}" + (f" h={h} d={d}" if vary_hd else "")

    for ax, (mode, what) in zip(axes[0], panels):
        any_point = False
        for name in bench.impl_names:
            for v in variants:
                rs = [r for r in bench.results if r.case.mode == mode and (r.case.sparsity, r.case.heads, r.case.d) == v]
                get = (lambda r, n=name: r.ms(n)) if what == "time" else (lambda r, n=name: r.peak(n))
                pts = sorted((r.case.L, get(r)) for r in rs if get(r))
                if pts:
                    ax.plot([x for x, _ in pts], [y for _, y in pts], color=_COLORS.get(name, "gray"), ls=styles[v], marker=_IMPL_MARKERS.get(name, "x"), ms=4)
                    any_point = True
                # Implementations that ran out of memory: a cross at the top.
                for r in rs:
                    ir = r.impls.get(name)
                    if ir is not None and ir.status == "oom":
                        ax.annotate("OOM", (r.case.L, 1), xycoords=("data", "axes fraction"), color=_COLORS.get(name, "gray"), fontsize=7, ha="center", va="top")
        if any_point:
            ax.set_yscale("log")
        ax.set_xlabel("L (sequence length)")
        ax.set_ylabel("ms" if what == "time" else "peak MB (above inputs)")
        label = "forward+backward" if mode == "fwdbwd" else "forward"
        ax.set_title(f"{'time' if what == 'time' else 'peak memory'}, {label}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if what == "memory" and not any_point:
            ax.text(0.5, 0.5, "not measured (CPU path)" if not bench.on_gpu else "no data", transform=ax.transAxes, ha="center", va="center")
    handles = [Line2D([], [], color=_COLORS.get(n, "gray"), marker=_IMPL_MARKERS.get(n, "x"), label=n) for n in bench.impl_names]
    handles += [Line2D([], [], color="black", ls=styles[v], label=vlabel(v)) for v in variants]
    axes[0][0].legend(handles=handles, fontsize=7, loc="best")
    device = title_device or ("CPU reference path (not comparable)" if not bench.on_gpu else "GPU")
    fig.suptitle(
        f"sgk attention ({bench.pattern}{' causal' if bench.causal else ''}, {bench.dtype}, batch {bench.batch}) on {device}", fontsize=11
    )
    fig.tight_layout()
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)  # as write_json does
    fig.savefig(path, dpi=120)
    plt.close(fig)
