"""Input validation shared by every public op.

Every check raises ``ValueError`` (bad value or shape) or ``TypeError`` (bad type or dtype) with a
message that names the op and the argument, says what was expected and what came. Nothing here
uses ``assert``: these guard user input.
"""
from __future__ import annotations

import numbers
import operator
from typing import Iterable, Sequence

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
"""Value dtypes the ops accept. float64 runs on the reference path only."""

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
"""Value dtypes the Triton kernels implement (fp32 accumulation for the half types)."""

HALF_DTYPES = (torch.float16, torch.bfloat16)
"""The half-precision dtypes (fp32 accumulation in every kernel)."""

INDEX_DTYPES = (torch.int32, torch.int64)

INT32_MAX = 2**31 - 1

ACTIVATIONS = (None, "relu")


def check(cond: bool, message, exc: type[Exception] = ValueError) -> None:
    """Raise ``exc(message)`` when ``cond`` is false.

    ``message`` may be a string or a zero-argument callable returning one; on hot paths pass a
    callable (a lambda around the f-string) so that the message is built only on failure.
    """
    if not cond:
        raise exc(message() if callable(message) else message)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _names(dtypes: Iterable[torch.dtype]) -> str:
    return ", ".join(_dtype_name(d) for d in dtypes)


def check_tensor(op: str, name: str, t: object) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}(): {name} must be a torch.Tensor, got {type(t).__name__}")
    return t


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
    if t.layout != torch.strided:
        raise TypeError(f"{op}(): {name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in dtypes:
        raise TypeError(f"{op}(): {name} must have dtype in ({_names(dtypes)}), got {_dtype_name(t.dtype)}")
    ndim = t.dim()
    if ndim < min_ndim or (max_ndim is not None and ndim > max_ndim):
        want = f"{min_ndim} dimensions" if max_ndim == min_ndim else f"at least {min_ndim} dimensions"
        raise ValueError(f"{op}(): {name} must have {want} (leading dimensions are batch), got shape {tuple(t.shape)}")
    return t


def check_same_device(op: str, **tensors: torch.Tensor | None) -> torch.device:
    """All given tensors live on one device; returns it."""
    items = [(n, t) for n, t in tensors.items() if t is not None]
    dev = items[0][1].device
    for n, t in items[1:]:
        if t.device != dev:
            raise ValueError(
                f"{op}(): all inputs must be on one device, but {items[0][0]} is on {dev} and {n} is on {t.device}"
            )
    return dev


def check_same_dtype(op: str, **tensors: torch.Tensor | None) -> torch.dtype:
    items = [(n, t) for n, t in tensors.items() if t is not None]
    dt = items[0][1].dtype
    for n, t in items[1:]:
        if t.dtype != dt:
            raise TypeError(
                f"{op}(): {items[0][0]} and {n} must have the same dtype, got {_dtype_name(dt)} and "
                f"{_dtype_name(t.dtype)} (convert one with .to())"
            )
    return dt


_CSR_TYPE: type | None = None  # sgk.csr.CSRMatrix, looked up once (csr imports this module)


def check_csr(op: str, name: str, a: object) -> "CSRMatrix":  # noqa: F821
    global _CSR_TYPE
    if _CSR_TYPE is None:
        from .csr import CSRMatrix

        _CSR_TYPE = CSRMatrix
    if not isinstance(a, _CSR_TYPE):
        hint = " (build one with sgk.CSRMatrix.from_dense / from_torch)" if isinstance(a, torch.Tensor) else ""
        raise TypeError(f"{op}(): {name} must be an sgk.CSRMatrix, got {type(a).__name__}{hint}")
    return a


def check_activation(op: str, activation: object) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}(): activation must be one of {ACTIVATIONS}, got {activation!r}")


def broadcast_batch(op: str, names: Sequence[str], shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Broadcast the leading (batch) shapes of several operands, with an error naming them."""
    present = [tuple(s) for s in shapes if len(s)]
    if not present:
        return ()
    if all(s == present[0] for s in present[1:]):
        return present[0]  # the common cases (no batch, or one batch shape) without torch's helper
    try:
        return tuple(torch.broadcast_shapes(*[tuple(s) for s in shapes]))
    except RuntimeError:
        desc = ", ".join(f"{n} batch shape {tuple(s)}" for n, s in zip(names, shapes))
        raise ValueError(f"{op}(): batch dimensions do not broadcast: {desc}") from None


def flat_batch(*sizes: int) -> int:
    """The batch of operands flattened to one leading dimension each, every size 1 (shared) or the
    batch (checked by :func:`broadcast_batch` first): the size that is not 1, so a batch of 0 stays 0
    (``max`` would make it 1)."""
    out = 1
    for s in sizes:
        if s != 1:
            out = s
    return out


def check_matrix_shape(op: str, shape: object) -> tuple[int, int]:
    """(m, k) from a matrix ``shape`` argument: a pair of non-negative integers (Python or NumPy
    ints, ``torch.Size``; not floats, which ``int()`` would truncate), else a ValueError naming it."""
    ok = isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 2
    if ok:
        try:
            dims = tuple(operator.index(s) for s in shape)
        except TypeError:
            ok = False
        else:
            ok = all(d >= 0 for d in dims)
    check(ok, lambda: f"{op}: shape must be (m, k) with integers m, k >= 0, got {shape!r}")
    return dims


def is_real(v: object) -> bool:
    """A real number (Python's or NumPy's int or float), not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def is_int(v: object) -> bool:
    """An integer (Python's or NumPy's), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_fraction(op: str, name: str, v: object) -> float:
    """``v`` as a float in [0, 1]: a real number (not a bool or a string), else a TypeError or
    ValueError naming ``name``."""
    check(is_real(v),
          lambda: f"{op}: {name} must be a number in [0, 1], got {type(v).__name__}", TypeError)
    check(0.0 <= float(v) <= 1.0, lambda: f"{op}: {name} must be in [0, 1], got {v}")
    return float(v)


def capturing(device: torch.device) -> bool:
    """Whether a CUDA graph is being captured on ``device``'s current stream: the tuner cannot time
    then (an exact-problem cache must not keep the untimed heuristic it falls back to), and a table
    built then holds its values only after a replay (a topology does not cache it)."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()
