"""Kernel launches with less host time per call.

``kernel[grid](...)`` through ``JITFunction.run`` re-derives the argument specialization on every
call; on the H100 machine's host CPU that is ~33 µs per launch, longer than a small SpMM takes on
the GPU (benchmarks/overhead.py). Under ``do_bench`` the host time hides behind the L2 flush only
while it is shorter than the flush, so a slow launch makes small problems *measure* host-bound.

:func:`launch` keeps, per specialization key, what the compiled kernel's C launcher needs and calls
that launcher itself, with tensors passed as their device addresses (the launcher otherwise calls
``data_ptr()`` and ``cuPointerGetAttribute`` on each one). The key holds everything Triton
specializes on for our argument kinds — each tensor's dtype and 16-byte alignment, each int's
value class (1, divisible by 16, beyond int32), the constexprs, warps, stages and the device — so
equal keys mean the same compiled code.

The first launch of a key, every launch under the interpreter, and kernels the direct call cannot
serve (a global or profiling scratch buffer, tensor descriptors, a launch hook such as a profiler's
installed) go through Triton's normal path. ``SGK_SLOW_LAUNCH=1`` (or :func:`set_fast_launch`)
turns the direct call off.
"""
from __future__ import annotations

import os
from typing import Any

import torch

_INT_MIN, _INT_MAX = -(2**31), 2**31
_FAST = os.environ.get("SGK_SLOW_LAUNCH", "0") in ("", "0")
# key -> (c launcher, function, packed metadata, cooperative, pdl, (enter, exit hook chains), CompiledKernel),
# or the CompiledKernel alone where only its runner can launch it
_ENTRIES: dict[tuple, Any] = {}


def set_fast_launch(enabled: bool) -> None:
    """Use the direct launcher call (default) or Triton's own launch path for every launch."""
    global _FAST
    _FAST = bool(enabled)
    _ENTRIES.clear()


def _int_spec(a: int) -> int:
    return 2 if a == 1 else (1 if a % 16 == 0 else 0) + (4 if _INT_MIN <= a < _INT_MAX else 8)


def _hooks_active(hook: Any) -> bool:
    """Triton 3.6 keeps launch hooks in a ``HookChain`` (never None; empty when nobody hooked in)."""
    if hook is None:
        return False
    calls = getattr(hook, "calls", None)
    return calls is None or bool(calls)


def _hook_chains() -> tuple:
    from triton import knobs

    return knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook


def direct_entry_problem(kernel: Any) -> str | None:
    """Why the direct call cannot serve this compiled kernel (None: it can)."""
    try:
        from triton import knobs

        run = kernel.run
        if _hooks_active(knobs.runtime.launch_enter_hook) or _hooks_active(knobs.runtime.launch_exit_hook):
            return "a launch hook is installed"
        if getattr(run, "global_scratch_size", 1) or getattr(run, "profile_scratch_size", 1):
            return f"scratch buffers ({getattr(run, 'global_scratch_size', '?')}, {getattr(run, 'profile_scratch_size', '?')})"
        c_launch = getattr(run, "launch", None)
        if c_launch is None or getattr(c_launch, "__name__", "") == "inner":  # tensor-descriptor wrapper
            return f"no plain C launcher ({type(run).__name__})"
        if getattr(run, "num_ctas", 1) != 1:
            return "clusters"
        return None
    except Exception as e:  # another Triton version's internals: keep the runner
        return f"{type(e).__name__}: {e}"


def _direct_entry(kernel: Any) -> tuple | None:
    """What the direct call needs, or None when this compiled kernel must go through its runner."""
    if direct_entry_problem(kernel) is not None:
        return None
    run = kernel.run
    return (run.launch, kernel.function, kernel.packed_metadata, run.launch_cooperative_grid, run.launch_pdl,
            _hook_chains(), kernel)


def launch(fn, grid: tuple[int, int, int], args: tuple, constexprs: dict[str, Any], num_warps: int, num_stages: int) -> None:
    """Launch ``fn[grid](*args, **constexprs, num_warps=..., num_stages=...)``; ``args`` are the
    runtime arguments in declaration order and the constexprs are declared after them. All tensor
    arguments are on one CUDA device (the ops layer checks that)."""
    spec = []
    call = []
    device = None
    for a in args:
        if type(a) is int:
            spec.append(_int_spec(a))
            call.append(a)
        elif isinstance(a, torch.Tensor):
            p = a.data_ptr()
            if device is None:
                device = a.get_device()
            spec.append((a.dtype, p & 15 == 0))
            call.append(p)
        elif type(a) is bool:
            spec.append(("b", a))
            call.append(a)
        elif isinstance(a, float):
            spec.append("f")
            call.append(a)
        else:
            spec.append((type(a), a))
            call.append(a)
    cvals = tuple(constexprs.values())
    key = (fn, tuple(spec), cvals, num_warps, num_stages, device)
    entry = _ENTRIES.get(key)
    if entry is not None:
        if type(entry) is tuple:
            c_launch, function, packed, coop, pdl, (enter, leave), kernel = entry
            # A profiler that hooks in later (HookChain.add) sends launches back through the runner.
            if not (getattr(enter, "calls", None) or getattr(leave, "calls", None)):
                stream = torch._C._cuda_getCurrentRawStream(device)
                c_launch(grid[0], grid[1], grid[2], stream, function, coop, pdl, None, None, packed, None, None, None,
                         *call, *cvals)
                return
            entry = kernel
        entry[grid](*args, *cvals)
        return
    kernel = fn[grid](*args, **constexprs, num_warps=num_warps, num_stages=num_stages)
    if device is None or device < 0 or kernel is None or not hasattr(kernel, "packed_metadata"):
        return  # interpreter or CPU: nothing to cache
    if list(constexprs) != list(fn.arg_names[len(args):]):
        return
    direct = _direct_entry(kernel) if _FAST else None
    _ENTRIES[key] = direct if direct is not None else kernel
