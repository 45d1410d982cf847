"""The device's DRAM read rate, measured: what the memory-bound (decode) benchmarks compare with.

A read-only Triton kernel (each program sums a strided share of a buffer far larger than the L2,
``sms × 4`` programs of 8 warps, 16 KB a step) reads 2 GB; the result is checked against a float64
sum before the time counts. On the H200 it reads at 4.41 TB/s
(benchmarks/results/2026-12-01_h200_a9ab572/probe_decode.json), a little above a plain
``torch.sum`` and above a device copy's 4.25 TB/s (read + write).
"""
from __future__ import annotations

from typing import Callable

import torch
import triton
import triton.language as tl

__all__ = ["dram_read_gbps"]


@triton.jit
def _read_kernel(x_ptr, out_ptr, n_blocks, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for blk in range(pid, n_blocks, nprog):
        acc += tl.load(x_ptr + blk * BLOCK + tl.arange(0, BLOCK))  # int32 offsets: buffers under 2**31 elements
    tl.store(out_ptr + pid * BLOCK + tl.arange(0, BLOCK), acc)


def read_kernel_launcher(x: torch.Tensor, block: int = 4096, warps: int = 8, per_sm: int = 4):
    """(launch, out): a callable reading all of ``x`` (fp32, a multiple of ``block`` elements) once,
    and the per-program partial sums it writes."""
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count
    nprog = sms * per_sm
    out = torch.empty(nprog * block, device=x.device, dtype=torch.float32)
    n_blocks = x.numel() // block
    return (lambda: _read_kernel[(nprog,)](x, out, n_blocks, BLOCK=block, num_warps=warps)), out


def dram_read_gbps(time_ms: Callable[[Callable[[], object]], float], device: torch.device, gigabytes: float = 2.0) -> float:
    """GB/s of the read kernel over ``gigabytes`` of fp32 on ``device``, timed by ``time_ms`` (the
    caller's timer, so the rate is measured as the cases are). Raises if the sum is wrong."""
    block = 4096
    numel = min(int(gigabytes * 1e9) // 4, 2**31 - 1) // block * block
    x = torch.rand(numel, device=device)  # positive: a kernel that skipped blocks could not hide in cancellation
    launch, out = read_kernel_launcher(x, block)
    launch()
    got, want = float(out.sum(dtype=torch.float64)), float(x.sum(dtype=torch.float64))
    if not abs(got - want) <= 1e-5 * want:
        raise RuntimeError(f"dram_read_gbps(): the read kernel summed {got}, expected {want}")
    ms = time_ms(launch)
    del x, out
    return numel * 4 / (ms * 1e-3) / 1e9
