"""Per-problem configuration choice: time a short list of candidates once per bucketed key.

A key groups problems that want the same configuration (dtype, N and mean row length rounded to
powers of two, ...): a raw nnz or N changes every step and would re-tune every step; a bucket
does not. The first call with a new key on a CUDA device times each candidate on the real
operands (``triton.testing.do_bench``, median of a few ms), times the two fastest again, longer
and interleaved (a single short timing mis-picked by 10% on the H200: a neighbour's noise is as
large as the gap between close candidates), and caches the faster; every later call with that key
reuses it. Where timing is impossible or unwanted — the Triton interpreter, a CUDA
graph being captured, tuning switched off with :func:`set_autotune` — the first candidate (the
measured heuristic) is used.
"""
from __future__ import annotations

import math
from typing import Callable, Hashable, Sequence, TypeVar

import torch

from ..checks import capturing

C = TypeVar("C")

_ENABLED = True
_EXACT_CACHES: list[dict] = []
EXACT_CACHE_LIMIT = 4096
"""Entries an exact-problem cache holds before it is cleared (a serving process that meets ever
new sizes must not grow it without bound)."""


def set_autotune(enabled: bool) -> None:
    """Turn per-bucket timing of candidate configurations on (default) or off (heuristic only).
    The launchers' exact-problem caches are cleared and their recorded launches dropped, so choices
    made under the other setting do not outlive it."""
    global _ENABLED
    _ENABLED = bool(enabled)
    for cache in _EXACT_CACHES:
        cache.clear()
    from ._launch import invalidate_prepared

    invalidate_prepared()  # recorded launches repeat a choice made under the other setting


def exact_cache() -> dict:
    """A launcher's exact problem -> configuration cache (one dict lookup per call after the first),
    cleared by :func:`set_autotune`; fill it with :func:`remember`."""
    cache: dict = {}
    _EXACT_CACHES.append(cache)
    return cache


def remember(cache: dict, key, value, device: torch.device) -> None:
    """Keep ``value`` for ``key`` unless a CUDA graph is being captured (the tuner cannot time
    there: its untimed heuristic must not outlive the capture); cleared past EXACT_CACHE_LIMIT."""
    if capturing(device):
        return
    if len(cache) >= EXACT_CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def autotune_enabled() -> bool:
    return _ENABLED


def pow2_bucket(x: float) -> int:
    """The power of two at or above x (1 for x <= 1)."""
    return 1 if x <= 1 else 1 << math.ceil(math.log2(x))


class BucketTuner:
    """Caches, per key, the fastest of a list of candidate configurations."""

    def __init__(self, name: str):
        self.name = name
        self.cache: dict[Hashable, object] = {}

    def choose(
        self,
        key: Hashable,
        candidates: Sequence[C],
        run: Callable[[C], object],
        device: torch.device,
    ) -> C:
        if not _ENABLED:  # heuristic only: choices timed while tuning was on are not used
            return candidates[0]
        if key in self.cache:
            return self.cache[key]  # type: ignore[return-value]
        first = candidates[0]
        if len(candidates) == 1 or not _ENABLED or device.type != "cuda" or capturing(device):
            return first
        from triton.testing import do_bench

        timed: list[tuple[float, int]] = []
        for i, cfg in enumerate(candidates):
            try:
                ms = do_bench(lambda: run(cfg), warmup=2, rep=8, return_mode="median")
            except Exception:  # a candidate that cannot run here (e.g. out of shared memory) is skipped
                continue
            timed.append((ms, i))
        if not timed:
            best = first
        elif len(timed) == 1:
            best = candidates[timed[0][1]]
        else:
            finalists = [candidates[i] for _, i in sorted(timed)[:2]]
            again = [math.inf, math.inf]
            for _ in range(2):  # interleaved, so a slow spell of the card hits both
                for j, cfg in enumerate(finalists):
                    again[j] = min(again[j], do_bench(lambda: run(cfg), warmup=2, rep=20, return_mode="median"))
            best = finalists[0] if again[0] <= again[1] else finalists[1]
        self.cache[key] = best
        return best
