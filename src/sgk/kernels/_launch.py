"""Kernel launches with less host time per call.

``kernel[grid](...)`` through ``JITFunction.run`` re-derives the argument specialization on every
call; on the H100 machine that is ~35 µs per launch, longer than a small SpMM takes on the GPU
(benchmarks/overhead.py). :func:`launch` keeps, per JIT function, the compiled kernel for each
specialization key and launches it through the compiled kernel's own runner
(``CompiledKernel[grid](*args)``). The key holds everything Triton specializes on for our
argument kinds — each tensor's dtype, device and 16-byte alignment, each int's value class (1, divisible by
16, beyond int32), the constexprs, warps and stages — so equal keys mean the same compiled code.
The first launch of a key, and every launch under the interpreter, goes through Triton's normal
path. (Calling the compiled kernel's C launcher directly, bypassing its runner, measured slower on
the H100 machine — 78 µs per launcher call against 34 — and was dropped; see docs/performance.md.)
"""
from __future__ import annotations

from typing import Any

import torch

_COMPILED: dict[tuple, Any] = {}


_INT_MIN, _INT_MAX = -(2**31), 2**31


def _spec(a: Any) -> Any:
    t = type(a)
    if t is int:  # the most common kind first (sizes, strides): 1, divisible by 16, int32 or not
        return 2 if a == 1 else (1 if a % 16 == 0 else 0) + (4 if _INT_MIN <= a < _INT_MAX else 8)
    if t is torch.Tensor or isinstance(a, torch.Tensor):
        return (a.dtype, a.get_device(), a.data_ptr() & 15 == 0)
    if t is bool:
        return ("b", a)
    if isinstance(a, float):
        return "f"
    return (type(a), a)


def launch(fn, grid: tuple[int, int, int], args: tuple, constexprs: dict[str, Any], num_warps: int, num_stages: int) -> None:
    """Launch ``fn[grid](*args, **constexprs, num_warps=..., num_stages=...)``; ``args`` are the
    runtime arguments in declaration order and the constexprs are declared after them."""
    key = (fn, tuple(_spec(a) for a in args), tuple(constexprs.items()), num_warps, num_stages)
    compiled = _COMPILED.get(key)
    if compiled is not None:
        compiled[grid](*args, *constexprs.values())
        return
    kernel = fn[grid](*args, **constexprs, num_warps=num_warps, num_stages=num_stages)
    if kernel is not None and hasattr(kernel, "packed_metadata") and list(constexprs) == list(
        fn.arg_names[len(args) :]
    ):
        _COMPILED[key] = kernel
