"""Path selection and batch flattening shared by the public ops."""
from __future__ import annotations

import math
import os

import torch

from ..checks import KERNEL_DTYPES, check

METHODS = ("auto", "triton", "reference")


MAX_PLANS = 64
"""Plans kept per topology and op (one per operand layout seen); the op's dict is cleared past this."""


def layout_key(t: torch.Tensor, u: torch.Tensor | None = None) -> tuple:
    """What an op's plan depends on (one or two operands): every check and launch decision reads
    only this metadata. (Spelled out, not looped: it is on the plans' hot path.)"""
    if u is None:
        return (t.shape, t.stride(), t.dtype, t.device)
    return (t.shape, t.stride(), t.dtype, t.device, u.shape, u.stride(), u.dtype, u.device)


def find_plan(topo, op: str, key: tuple):
    """The plan ``op`` cached on ``topo`` for ``key`` (a repeated inference call's operand layout),
    or None."""
    plans = topo._cache.get(op + "_plans")
    return plans.get(key) if plans is not None else None


def keep_plan(topo, op: str, key: tuple, plan) -> None:
    """Cache ``plan`` on ``topo`` for ``key``. A plan must not refer to ``topo`` itself (take it as an
    argument): a closure over it, stored in its own cache, would keep it alive until Python's
    cycle collector ran."""
    plans = topo._cache.setdefault(op + "_plans", {})
    if len(plans) >= MAX_PLANS:
        plans.clear()
    plans[key] = plan


def interpreter_enabled() -> bool:
    """True when Triton kernels run under the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def select_backend(op: str, method: str, t: torch.Tensor, shown: str | None = None) -> str:
    """Pick ``"triton"`` or ``"reference"`` for an op whose data live where ``t`` does.

    ``auto``: Triton kernels for CUDA tensors of the kernel dtypes (fp32, fp16, bf16), the plain-torch
    reference otherwise (CPU tensors, float64). ``triton`` forces the kernels (CUDA tensors, or CPU
    tensors under TRITON_INTERPRET=1); ``reference`` forces the plain-torch path. ``shown``: the
    method the user asked for, when it was mapped to ``triton`` (spmm's forced paths), for messages.
    """
    if method == "auto":  # the hot path: no environment lookup for CUDA tensors
        return "triton" if t.is_cuda and t.dtype in KERNEL_DTYPES else "reference"
    check(method in METHODS, lambda: f"{op}(): method must be one of {METHODS}, got {method!r}")
    if method == "reference":
        return "reference"
    usable = t.is_cuda or (t.device.type == "cpu" and interpreter_enabled())
    if method == "triton":
        check(
            usable,
            lambda: f"{op}(): method={shown or 'triton'!r} needs CUDA tensors (or TRITON_INTERPRET=1 on the CPU), got a tensor on {t.device}",
        )
        check(
            t.dtype in KERNEL_DTYPES,
            lambda: f"{op}(): the Triton kernels take float32, float16 or bfloat16, got {t.dtype} (use method='reference')",
            TypeError,
        )
    return "triton"


def flatten_batch(t: torch.Tensor, batch: tuple[int, ...], tail: int) -> torch.Tensor:
    """View ``t`` of shape (*bt, *tail_dims) as (1 or prod(batch), *tail_dims).

    An operand that does not vary over the batch stays one entry (the kernels give it batch
    stride 0); one that does is expanded to the full batch and flattened (a view when it can be).
    The innermost dimension is made unit-stride when it is not.
    """
    if t.dim() == tail:  # the common case: no batch dimensions
        out = t.unsqueeze(0)
        return out.contiguous() if tail == 1 and out.stride(-1) != 1 else out
    tail_shape = tuple(t.shape[t.dim() - tail :])
    if math.prod(t.shape[: t.dim() - tail]) == 1:
        out = t.reshape(1, *tail_shape)
    else:
        out = t.expand(*batch, *tail_shape).reshape(math.prod(batch), *tail_shape)
    if tail == 1 and out.stride(-1) != 1:
        out = out.contiguous()
    return out
