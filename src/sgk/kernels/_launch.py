"""Kernel launches with less host time per call.

``kernel[grid](...)`` through ``JITFunction.run`` re-derives the argument specialization on every
call; on the H100 machine that is ~35 µs per launch, longer than a small SpMM takes on the GPU
(benchmarks/overhead.py). :func:`launch` keeps, per JIT function, the compiled kernel for each
specialization key and calls its launcher directly. The key holds everything Triton specializes
on for our argument kinds — each tensor's dtype, device and 16-byte alignment, each int's value
class (1, divisible by 16, beyond int32), the constexprs, warps and stages — so equal keys mean the
same compiled code. The first launch of a key, launches while Triton's launch hooks are set, and
every launch under the interpreter go through Triton's normal path.
"""
from __future__ import annotations

from typing import Any

import torch

_COMPILED: dict[tuple, Any] = {}

try:  # the raw stream of the current device, as Triton itself gets it
    from torch._C import _cuda_getCurrentRawStream as _raw_stream
except ImportError:  # a torch built without CUDA: every launch takes Triton's path
    _raw_stream = None


def _spec(a: Any) -> Any:
    if isinstance(a, torch.Tensor):
        return (a.dtype, a.get_device(), a.data_ptr() % 16 == 0)
    if isinstance(a, bool):
        return ("b", a)
    if isinstance(a, int):
        return ("i", a == 1, a % 16 == 0, -(2**31) <= a < 2**31)
    if isinstance(a, float):
        return "f"
    return (type(a), a)


def _hooks_set() -> bool:
    from triton import knobs

    return knobs.runtime.launch_enter_hook is not None or knobs.runtime.launch_exit_hook is not None


def launch(fn, grid: tuple[int, int, int], args: tuple, constexprs: dict[str, Any], num_warps: int, num_stages: int) -> None:
    """Launch ``fn[grid](*args, **constexprs, num_warps=..., num_stages=...)``; ``args`` are the
    runtime arguments in declaration order and the constexprs are declared after them."""
    key = (fn, tuple(map(_spec, args)), tuple(constexprs.items()), num_warps, num_stages)
    kernel = _COMPILED.get(key)
    if kernel is not None:
        device = args[0].get_device()
        kernel.run(
            grid[0], grid[1], grid[2], _raw_stream(device), kernel.function, kernel.packed_metadata,
            None, None, None, *args, *constexprs.values(),
        )
        return
    kernel = fn[grid](*args, **constexprs, num_warps=num_warps, num_stages=num_stages)
    if (
        _raw_stream is not None
        and kernel is not None
        and hasattr(kernel, "packed_metadata")
        and list(constexprs) == list(fn.arg_names[len(args) :])
        and not _hooks_set()
    ):
        kernel.run  # noqa: B018 (loads the module and its launcher now, outside the fast path)
        _COMPILED[key] = kernel
