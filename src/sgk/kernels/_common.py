"""Small helpers shared by the kernel launchers."""
from __future__ import annotations

import torch

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
