"""Small helpers shared by the kernel launchers, and the tensor-core product the kernels share."""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

MAX_GRID_YZ = 65535
"""CUDA's limit on grid dimensions 1 and 2; launchers split larger batches into several launches."""


def next_power_of_2(x: int) -> int:
    return 1 if x <= 1 else 1 << (int(x) - 1).bit_length()


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) for ints. (``triton.cdiv`` is a JIT function: called from Python it goes through
    the JIT's call path, several microseconds per call on a launcher's hot path.)"""
    return -(-a // b)


def batch_stride(t: torch.Tensor | None, tail: int) -> int:
    """The batch stride a kernel gets for an operand with ``tail`` trailing (non-batch) dimensions:
    0 when it has no batch dimension or a batch of one (every batch entry reads the same data)."""
    if t is None or t.dim() == tail or t.shape[0] == 1:
        return 0
    return t.stride(0)


UPCAST = "upcast"
"""The ``INPUT_PRECISION`` of a bf16 product under the Triton interpreter: the interpreter gets bf16
``tl.dot`` silently wrong (values of 1e10 for operands of 1; shared/DESIGN.md), so there the
operands are widened to fp32 first. Never chosen for CUDA tensors: the GPU code is unchanged."""


_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
"""Whether the kernels were defined under the interpreter (Triton reads the variable when a kernel
is decorated, at import)."""


def dot_precision(t: torch.Tensor, fp32: str) -> str:
    """``INPUT_PRECISION`` for a kernel's ``tl.dot`` over operands of ``t``'s dtype: ``fp32`` for
    fp32 ("tf32", "tf32x3" or "ieee"), :data:`UPCAST` for bf16 under the interpreter (on the CPU,
    where only the interpreter runs kernels, or with ``TRITON_INTERPRET=1`` at import), "ieee"
    otherwise."""
    if t.dtype == torch.float32:
        return fp32
    return UPCAST if t.dtype == torch.bfloat16 and (_INTERPRETED or not t.is_cuda) else "ieee"


@triton.jit
def mma(a, b, acc, INPUT_PRECISION: tl.constexpr):
    """``acc + a @ b`` on tensor cores (``tl.dot``), or in fp32 for :data:`UPCAST`."""
    if INPUT_PRECISION == "upcast":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(a, b, acc, input_precision=INPUT_PRECISION)
