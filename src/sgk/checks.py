"""Input validation shared by every public op.

Every check raises ``ValueError`` (bad value or shape) or ``TypeError`` (bad type or dtype) with a
message that names the op and the argument, says what was expected and what came. Nothing here
uses ``assert``: these guard user input.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
"""Value dtypes the ops accept. float64 runs on the reference path only."""

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
"""Value dtypes the Triton kernels implement (fp32 accumulation for the half types)."""

INDEX_DTYPES = (torch.int32, torch.int64)

INT32_MAX = 2**31 - 1

ACTIVATIONS = (None, "relu")


def check(cond: bool, message: str, exc: type[Exception] = ValueError) -> None:
    """Raise ``exc(message)`` when ``cond`` is false."""
    if not cond:
        raise exc(message)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _names(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(_dtype_name(d) for d in dtypes)


def check_tensor(op: str, name: str, t: object) -> torch.Tensor:
    check(isinstance(t, torch.Tensor), f"{op}(): {name} must be a torch.Tensor, got {type(t).__name__}", TypeError)
    return t  # type: ignore[return-value]


def check_dense(
    op: str,
    name: str,
    t: object,
    *,
    dtypes: Sequence[torch.dtype] = FLOAT_DTYPES,
    min_ndim: int = 2,
    max_ndim: int | None = None,
) -> torch.Tensor:
    """A strided (dense) tensor of one of ``dtypes`` with ``min_ndim <= ndim <= max_ndim``."""
    t = check_tensor(op, name, t)
    check(t.layout == torch.strided, f"{op}(): {name} must be a dense (strided) tensor, got layout {t.layout}", TypeError)
    check(
        t.dtype in dtypes,
        f"{op}(): {name} must have dtype in ({_names(dtypes)}), got {_dtype_name(t.dtype)}",
        TypeError,
    )
    check(
        t.dim() >= min_ndim and (max_ndim is None or t.dim() <= max_ndim),
        f"{op}(): {name} must have "
        + (f"{min_ndim} dimensions" if max_ndim == min_ndim else f"at least {min_ndim} dimensions")
        + f" (leading dimensions are batch), got shape {tuple(t.shape)}",
    )
    return t


def check_same_device(op: str, **tensors: torch.Tensor | None) -> torch.device:
    """All given tensors live on one device; returns it."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    dev = items[0][1].device
    for n, t in items[1:]:
        check(
            t.device == dev,
            f"{op}(): all inputs must be on one device, but {items[0][0]} is on {dev} and {n} is on {t.device}",
        )
    return dev


def check_same_dtype(op: str, **tensors: torch.Tensor | None) -> torch.dtype:
    items = [(n, t) for n, t in tensors.items() if t is not None]
    dt = items[0][1].dtype
    for n, t in items[1:]:
        check(
            t.dtype == dt,
            f"{op}(): {items[0][0]} and {n} must have the same dtype, got {_dtype_name(dt)} and {_dtype_name(t.dtype)}"
            f" (convert one with .to())",
            TypeError,
        )
    return dt


def check_csr(op: str, name: str, a: object) -> "CSRMatrix":  # noqa: F821
    from .csr import CSRMatrix

    check(
        isinstance(a, CSRMatrix),
        f"{op}(): {name} must be an sgk.CSRMatrix, got {type(a).__name__}"
        + (" (build one with sgk.CSRMatrix.from_dense / from_torch)" if isinstance(a, torch.Tensor) else ""),
        TypeError,
    )
    return a  # type: ignore[return-value]


def check_activation(op: str, activation: object) -> None:
    check(
        activation in ACTIVATIONS,
        f"{op}(): activation must be one of {ACTIVATIONS}, got {activation!r}",
    )


def broadcast_batch(op: str, names: Sequence[str], shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Broadcast the leading (batch) shapes of several operands, with an error naming them."""
    try:
        return tuple(torch.broadcast_shapes(*[tuple(s) for s in shapes]))
    except RuntimeError:
        desc = ", ".join(f"{n} batch shape {tuple(s)}" for n, s in zip(names, shapes))
        raise ValueError(f"{op}(): batch dimensions do not broadcast: {desc}") from None
