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

A caller that repeats one launch with only some tensors new (an op's plan for a recurring operand
layout) can ask :func:`launch` for a :class:`Prepared` launch: the C launcher's whole argument list
kept, the new tensors' addresses written into it per call, no key built.
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
_GENERATION = [0]  # Prepared launches of an older generation refuse to run (their caller takes its full path)


def set_fast_launch(enabled: bool) -> None:
    """Use the direct launcher call (default) or Triton's own launch path for every launch."""
    global _FAST
    _FAST = bool(enabled)
    _ENTRIES.clear()
    invalidate_prepared()


def invalidate_prepared() -> None:
    """Make every :class:`Prepared` launch refuse to run from now on (their callers record anew):
    called when the launch path or the tuner's setting changes."""
    _GENERATION[0] += 1


class Prepared:
    """One launch recorded by :func:`launch` for repeating: the grid, the C launcher's argument list
    and the positions of the tensors that change per call. ``run(tensors)`` writes those tensors'
    addresses into the list and launches, or returns False without launching when the record does
    not apply: a tensor's address has another residue mod 16 than when recorded (the compiled code
    and the caller's alignment-dependent choices, such as packed loads, were made for that one),
    a launch hook was added since, or the launch path or tuner setting changed
    (:func:`invalidate_prepared`). The fixed tensors' addresses are kept: the caller holds them."""

    __slots__ = ("_entry", "_grid", "_call", "_slots", "_residues", "_device", "_generation")

    def __init__(self, entry: tuple, grid: tuple, call: list, slots: tuple, device: int):
        self._entry = entry
        self._grid = grid
        self._call = call
        self._slots = slots
        self._residues = tuple(call[i] & 15 for i in slots)
        self._device = device
        self._generation = _GENERATION[0]

    @property
    def width(self) -> int:
        """How many tensors :meth:`run` takes (the positions recorded)."""
        return len(self._slots)

    def run(self, tensors: tuple) -> bool:
        c_launch, function, packed, coop, pdl, (enter, leave), _ = self._entry
        if self._generation != _GENERATION[0] or getattr(enter, "calls", None) or getattr(leave, "calls", None):
            return False
        if len(tensors) != len(self._slots):  # a slot left out would keep the first call's address
            raise ValueError(f"Prepared.run(): {len(self._slots)} tensors recorded, {len(tensors)} given")
        call = self._call.copy()
        for i, r, t in zip(self._slots, self._residues, tensors):
            p = t.data_ptr()
            if p & 15 != r:
                return False
            call[i] = p
        g = self._grid
        c_launch(g[0], g[1], g[2], torch._C._cuda_getCurrentRawStream(self._device), function, coop, pdl, None, None,
                 packed, None, None, None, *call)
        return True


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


def launch(fn, grid: tuple[int, int, int], args: tuple, constexprs: dict[str, Any], num_warps: int, num_stages: int,
           prepare: tuple[int, ...] | None = None) -> Prepared | None:
    """Launch ``fn[grid](*args, **constexprs, num_warps=..., num_stages=...)``; ``args`` are the
    runtime arguments in declaration order and ``constexprs`` every constexpr the kernel declares
    after them, in that order, defaults included (a ``TypeError`` otherwise). All tensor
    arguments are on one CUDA device (the ops layer checks that).

    ``prepare``: positions in ``args`` of tensors that a repeat of this launch will replace; then
    the :class:`Prepared` launch for repeating it is returned, or None where the direct call cannot
    serve the kernel (or under the interpreter, on the CPU, inside a CUDA-graph capture)."""
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
                return None if prepare is None else _prepared(entry, grid, call, cvals, prepare, device)
            entry = kernel
        entry[grid](*args, *cvals)
        return None
    declared = list(getattr(fn, "arg_names", ()))[len(args):]
    if declared and list(constexprs) != declared:
        # the cached direct call passes the values in the dict's order: any other order (or a
        # constexpr left to its default) would be a wrong launch there, or no fast path at all
        raise TypeError(f"launch(): {getattr(fn, '__name__', fn)} declares the constexprs {declared} after its "
                        f"runtime arguments, got {list(constexprs)}")
    kernel = fn[grid](*args, **constexprs, num_warps=num_warps, num_stages=num_stages)
    if device is None or device < 0 or kernel is None or not hasattr(kernel, "packed_metadata"):
        return None  # interpreter or CPU: nothing to cache
    direct = _direct_entry(kernel) if _FAST else None
    _ENTRIES[key] = direct if direct is not None else kernel
    return None if prepare is None or direct is None else _prepared(direct, grid, call, cvals, prepare, device)


def _prepared(entry: tuple, grid: tuple, call: list, cvals: tuple, prepare: tuple, device: int) -> Prepared | None:
    if torch.cuda.is_current_stream_capturing():
        return None
    return Prepared(entry, tuple(grid), [*call, *cvals], tuple(prepare), device)
