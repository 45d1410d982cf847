"""Helpers for testing sgk and code built on it: tolerances by dtype and reduction length.

Errors are judged against a float64 reference computed from the *same* (rounded) inputs, so what
remains is the accumulation error (fp32, growing like sqrt(reduction length)) plus one rounding
of the output to its dtype.
"""
from __future__ import annotations

import math

import torch

EPS = {
    torch.float64: 2.0**-52,
    torch.float32: 2.0**-23,
    torch.float16: 2.0**-10,
    torch.bfloat16: 2.0**-7,
}

INTERPRETER_BF16_SLACK = 4.0
"""The Triton interpreter truncates fp32→bf16 instead of rounding: allow a few more ulps there."""


def tolerance(dtype: torch.dtype, reduction_length: int = 1) -> tuple[float, float]:
    """(rtol, atol) for outputs of ``dtype`` that sum ``reduction_length`` products of O(1) terms."""
    acc_eps = EPS[torch.float64] if dtype == torch.float64 else EPS[torch.float32]
    out_eps = EPS[dtype]
    grow = math.sqrt(max(1, reduction_length))
    rtol = 2 * out_eps + 8 * acc_eps * grow
    atol = rtol * grow
    return rtol, atol


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: torch.dtype,
    reduction_length: int = 1,
    *,
    slack: float = 1.0,
    msg: str = "",
) -> None:
    """Elementwise |actual − expected| ≤ atol + rtol·|expected| with the table's tolerances.

    ``expected`` should be a float64 reference. NaN never passes. ``slack`` widens both tolerances.
    """
    rtol, atol = tolerance(dtype, reduction_length)
    torch.testing.assert_close(
        actual.detach().to(torch.float64).cpu(),
        expected.detach().to(torch.float64).cpu(),
        rtol=rtol * slack,
        atol=atol * slack,
        equal_nan=False,
        msg=(lambda m: f"{msg} {m}") if msg else None,
    )


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """‖actual − expected‖ / ‖expected‖ in float64 (0 when both are empty or zero)."""
    a, e = actual.detach().double().cpu(), expected.detach().double().cpu()
    if e.numel() == 0:
        return 0.0
    denom = float(e.norm())
    num = float((a - e).norm())
    return num / denom if denom else num
