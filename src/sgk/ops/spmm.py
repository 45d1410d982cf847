"""``spmm``: sparse × dense matrix product with fused bias and ReLU, batched, with autograd."""
from __future__ import annotations

import math

import torch

from ..checks import (
    FLOAT_DTYPES,
    HALF_DTYPES,
    broadcast_batch,
    check,
    check_activation,
    check_csr,
    check_dense,
    check_same_device,
    check_same_dtype,
)
from ..bsr import BSRMatrix
from ..csr import CSRMatrix, Topology
from . import _library
from ._common import find_plan, flatten_batch, keep_plan, layout_key, select_backend
from .bsr import bsr_spmm

__all__ = ["spmm"]

_PATHS = ("csr", "bitmap")
_METHODS = ("auto", "triton", "reference", *_PATHS)


def _cannot_sync(b: torch.Tensor) -> bool:
    """Whether building a topology form or reading a statistic off the device (a host
    synchronisation) is off-limits here: inside a trace or a CUDA-graph capture."""
    return torch.compiler.is_compiling() or (b.is_cuda and torch.cuda.is_current_stream_capturing())


def _make_plan(topo: Topology, values: torch.Tensor, b: torch.Tensor, path: str):
    """For a validated inference call (Triton backend, no batch, bias or activation) whose operand
    layout recurs: the kernel launcher with the topology's tensors bound, so that the next call
    with the same layout skips the checks and the op layers (~20 µs of host time on the H200
    machine, more than a decode kernel takes), and from its second call on the launcher's own
    work too (it repeats its first call's launch). None where the call must keep the full path."""
    if _cannot_sync(b) or values.stride(-1) != 1:
        return None  # in a capture the bitmap choice may differ from later calls
    from ..kernels import spmm as kspmm

    compact, bitmap = _kernel_tables(topo, b, "triton", path, values, ())
    # After its first call the plan repeats that call's recorded launch (kernels.spmm.SpmmPlan).
    return kspmm.SpmmPlan(topo.row_offsets, topo.column_indices, topo.row_swizzle, compact, bitmap, _max_row(topo, b),
                          topo.row_bounds)


def _max_row(topo: Topology, b: torch.Tensor) -> int:
    """The topology's longest row, for the tuner's key (found once per topology: one host
    synchronisation); -1 (unknown) where finding it would synchronise inside a trace or a capture."""
    cached = topo._cache.get("max_row_length")
    if cached is not None:
        return cached
    return -1 if _cannot_sync(b) else topo.max_row_length


def bitmap_may_pay(dtype: torch.dtype, m: int, k: int, n: int, batch: int) -> bool:
    """Where the automatic choice gives the kernels the topology's bitmap, for the tuner to time
    the forms that read it beside the gather kernels: fp16/bf16 at any N (the bitmap kernel:
    decode widths, the bytes of the weight; wider, the tensor cores; and the densify form), fp32
    where the densify form may run (``kernels.spmm.densify_allowed``: its three TF32 products
    only; the bitmap kernel's fp32 form was slower than the gather kernels on every shape probed
    on the H200, ``method="bitmap"`` still runs it). ``batch``: the values' batch size."""
    if dtype in HALF_DTYPES:
        return True
    if dtype != torch.float32:
        return False
    from ..kernels.spmm import densify_allowed  # (a Triton backend call only: the kernels are in use)

    return densify_allowed(m, k, n, batch, dtype)


def _kernel_tables(topo: Topology, b: torch.Tensor, backend: str, path: str, values: torch.Tensor,
                   batch: tuple[int, ...]):
    """The topology's extra forms the kernels may read: (16-bit indices, bitmap), each or None."""
    n = b.shape[-1]
    m, k = topo.shape
    # 16-bit indices for the kernels' compact configurations, where the matrix's bytes dominate.
    compact = topo.column_indices16 if backend == "triton" and n <= 64 else None
    bitmap = None
    if path == "bitmap":
        bitmap = topo.bitmap
    elif (path == "auto" and backend == "triton" and topo.nnz * 32 >= m * k
          # the values' batch as the kernels see it (flatten_batch: one entry, or the full broadcast batch)
          and bitmap_may_pay(b.dtype, m, k, n, 1 if values.numel() == topo.nnz else math.prod(batch))):
        # Built on first use, but not where building would synchronise inside a trace or a capture.
        bitmap = topo._cache.get("bitmap") if _cannot_sync(b) else topo.bitmap
    return compact, bitmap


def _spmm_raw(
    topo: Topology,
    values: torch.Tensor,
    b: torch.Tensor,
    bias: torch.Tensor | None,
    relu: bool,
    batch: tuple[int, ...],
    backend: str,
    path: str = "csr",
) -> torch.Tensor:
    """C (*batch, m, n) from unflattened operands; no autograd. ``path``: ``"csr"`` (the gather
    kernels), ``"auto"`` (also offer the kernels the topology's bitmap, built on first use, where
    :func:`bitmap_may_pay`: the tuner times both) or ``"bitmap"`` (the dense-tile kernel only; the
    caller has checked that it applies)."""
    compact, bitmap = _kernel_tables(topo, b, backend, path, values, batch)
    bits, word_offsets = bitmap if bitmap is not None else (None, None)
    if path == "bitmap" and backend == "triton":
        backend = "triton-bitmap"
    max_row = _max_row(topo, b) if backend != "reference" else -1
    # not filled into the topology's cache inside a trace (a side effect dynamo cannot trace) or a
    # capture (None: made per call)
    bounds = None if backend == "reference" else (topo._cache.get("row_bounds") if _cannot_sync(b) else topo.row_bounds)
    if not batch and bias is None:  # the common case, with the fewest host operations (no views)
        return _library.spmm(
            topo.row_offsets,
            topo.column_indices,
            topo.row_indices,
            topo.row_swizzle,
            values if values.stride(-1) == 1 else values.contiguous(),
            b,
            None,
            relu,
            backend,
            compact,
            bits,
            word_offsets,
            max_row,
            bounds,
        )
    out = _library.spmm(
        topo.row_offsets,
        topo.column_indices,
        topo.row_indices,
        topo.row_swizzle,
        flatten_batch(values, batch, 1),
        flatten_batch(b, batch, 2),
        flatten_batch(bias, batch, 1) if bias is not None else None,
        relu,
        backend,
        compact,
        bits,
        word_offsets,
        max_row,
        bounds,
    )
    return out.reshape(*batch, topo.shape[0], b.shape[-1])


class _Spmm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, topo, values, b, bias, relu, batch, backend, path):
        # path: the caller's ("auto", "csr" or "bitmap"). The forward takes the gathers unless
        # "bitmap" is forced (training builds no bitmap of its own); dB may take the densify form
        # in fp32 under "auto" only.
        out = _spmm_raw(topo, values, b, bias, relu, batch, backend, "bitmap" if path == "bitmap" else "csr")
        ctx.topo, ctx.relu, ctx.batch, ctx.backend = topo, relu, batch, backend
        ctx.db_path = "auto" if path == "auto" and values.dtype == torch.float32 else "csr"
        ctx.save_for_backward(values, b, bias, out if relu else None)
        return out

    @staticmethod
    def backward(ctx, grad):
        values, b, bias, out = ctx.saved_tensors
        topo, batch, backend = ctx.topo, ctx.batch, ctx.backend
        if ctx.relu:
            grad = grad * (out > 0)
        grad = grad.contiguous()
        d_values = d_b = d_bias = None
        if ctx.needs_input_grad[1]:
            # d(values) = (dC · Bᵀ) sampled at A's pattern.
            flat = _library.sddmm(
                topo.row_offsets,
                topo.column_indices,
                topo.row_indices,
                topo.row_swizzle,
                flatten_batch(grad, batch, 2),
                flatten_batch(b, batch, 2),
                backend,
            )
            d_values = flat.reshape(*batch, topo.nnz).sum_to_size(values.shape)
        if ctx.needs_input_grad[2]:
            # dB = Aᵀ · dC through the cached transpose. In fp32 under method "auto" the tuner may
            # also time the densify form there (its three TF32 products; the transposed topology's
            # bitmap is built for it, 2 bits an element): the gathers of dC's rows are the slow part
            # of fp32 training. A forced "csr" or "bitmap" keeps the gathers for dB.
            t_topo, perm = topo.transpose()
            values_t = values.index_select(-1, perm) if topo.nnz else values
            d_b = _spmm_raw(t_topo, values_t, grad, None, False, batch, backend, ctx.db_path).sum_to_size(b.shape)
        if bias is not None and ctx.needs_input_grad[3]:
            d_bias = grad.sum(-1).sum_to_size(bias.shape)
        return None, d_values, d_b, d_bias, None, None, None, None


def spmm(
    a: CSRMatrix,
    b: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """C = A·B for a CSR matrix A (m×k) and a dense B (k×n), optionally ``activation(C + bias)``.

    Args:
        a: :class:`~sgk.CSRMatrix` m×k; its values may have batch dimensions (*ba, nnz). A
            :class:`~sgk.BSRMatrix` goes to :func:`sgk.bsr_spmm` (no bias or activation there).
        b: dense (*bb, k, n) tensor of a's dtype (any strides).
        bias: optional (*bbias, m) tensor added to every column of row i (the paper's SpmmBiasRelu).
        activation: ``None`` or ``"relu"``, fused into the kernel's epilogue.
        method: ``"auto"`` (Triton kernels for CUDA tensors, plain torch otherwise), ``"triton"``
            or ``"reference"``; or a Triton path forced: ``"csr"`` (the gather kernels over the
            CSR arrays) or ``"bitmap"`` (the dense-tile tensor-core kernel over
            :attr:`Topology.bitmap`; fp32 multiplies in three TF32 products, fp32-accurate). Under
            ``"auto"``/``"triton"`` the path is chosen per problem: a :class:`~sgk.BSRMatrix`
            takes the block kernels; for a CSRMatrix the tuner times the gather kernels and, for
            fp16/bf16 inference calls (no autograd graph recorded) at density >= 1/32, the bitmap
            kernel too, and at N >= 128 the densify form (A decoded from the bitmap into a
            transient dense scratch of at most 64 MiB, then cuBLAS over it, the bias in its
            epilogue; not under deterministic algorithms), and keeps the fastest. fp32 inference
            calls at N >= 128 and density >= 1/32 get the densify form too, and so does fp32
            training's dB = Aᵀ·dC (with the transposed pattern's bitmap), its product three TF32
            tensor-core products over A and B split into TF32 heads and tails (errors those of
            cuBLAS fp32 on the H200; see kernels/spmm.py), deterministic; ``method="csr"`` keeps
            the gathers' fp32 arithmetic, for dB too. The densify form multiplies A's zeros: an
            inf or NaN in B (or in dC, for dB) gives NaN in C where the gathers would skip it. Inside ``torch.compile`` or a CUDA-graph capture the
            bitmap is used only if it was built before (building it synchronises with the device).

    Returns:
        (*batch, m, n) tensor of b's dtype, with batch = broadcast(ba, bb, bbias). fp16/bf16
        inputs accumulate in fp32 (where the densify form is chosen, cuBLAS's product does, and
        PyTorch's default ``torch.backends.cuda.matmul.allow_{fp16,bf16}_reduced_precision_reduction``
        lets it reduce split-K partial sums in half precision: set it to False to keep fp32
        throughout). Differentiable in a.values, b and bias.

    Reference: :func:`sgk.ops.reference.spmm`.
    """
    op = "spmm"
    if (bias is None and activation is None and method == "auto" and type(a) is CSRMatrix and type(b) is torch.Tensor
            and not torch.compiler.is_compiling()):
        values = a.values
        if not (torch.is_grad_enabled() and (values.requires_grad or b.requires_grad)):
            plan = find_plan(a.topology, "spmm", layout_key(values, b))
            if plan is not None:
                return plan(values, b)
    path = "auto"
    if method != "auto":
        if method in _PATHS:
            check(not isinstance(a, BSRMatrix), lambda: f"{op}(): method={method!r} is a CSRMatrix path; a BSRMatrix takes "
                  "'auto', 'triton' or 'reference'")
            path, method = method, "triton"
        elif method not in _METHODS:
            raise ValueError(f"{op}(): method must be one of {_METHODS}, got {method!r}")
    if isinstance(a, BSRMatrix):  # block-sparse: the tensor-core path
        check(bias is None and activation is None, f"{op}(): bias and activation are not supported for a BSRMatrix")
        return bsr_spmm(a, b, method=method)
    check_csr(op, "a", a)
    check_dense(op, "b", b, dtypes=FLOAT_DTYPES, min_ndim=2)
    if bias is not None:
        check_dense(op, "bias", bias, dtypes=FLOAT_DTYPES, min_ndim=1)
    check_same_device(op, a=a.values, b=b, bias=bias)
    check_same_dtype(op, a=a.values, b=b)
    m, k = a.shape
    check(
        b.shape[-2] == k,
        lambda: f"{op}(): a is {m}×{k} but b has {b.shape[-2]} rows (b must be (*batch, {k}, n), got {tuple(b.shape)})",
    )
    check_activation(op, activation)
    bias_batch: tuple[int, ...] = ()
    if bias is not None:
        check_same_dtype(op, b=b, bias=bias)
        check(bias.shape[-1] == m, lambda: f"{op}(): bias must have shape (*batch, m) with m = {m}, got {tuple(bias.shape)}")
        bias_batch = tuple(bias.shape[:-1])
    if a.values.dim() == 1 and b.dim() == 2 and not bias_batch:
        batch: tuple[int, ...] = ()
    else:
        batch = broadcast_batch(op, ("a", "b", "bias"), (a.batch_shape, tuple(b.shape[:-2]), bias_batch))
    backend = select_backend(op, method, b, shown=None if path == "auto" else path)
    relu = activation == "relu"
    if path == "bitmap" and (m == 0 or k == 0):
        path = "csr"  # nothing to decode: the kernels' empty-problem handling gives the zeros (or bias)
    if path == "bitmap":
        check(a.topology.bitmap is not None, lambda: f"{op}(): method='bitmap' needs a's pattern in bitmap form, which is "
              "not built below density 1/64, beyond 2 GiB of bitmap, or for unsorted column indices (see Topology.bitmap)")
    if torch.is_grad_enabled() and (a.values.requires_grad or b.requires_grad or (bias is not None and bias.requires_grad)):
        topo = a.topology.prepare(transpose=b.requires_grad, bitmap=path == "bitmap")
        # training: the bitmap only when asked for (it costs two bits per matrix element)
        return _Spmm.apply(topo, a.values, b, bias, relu, batch, backend, path)
    if (method == "auto" and backend == "triton" and not batch and bias is None and not relu and type(b) is torch.Tensor
            and not torch.compiler.is_compiling()):
        plan = _make_plan(a.topology, a.values, b, path)
        if plan is not None:
            keep_plan(a.topology, "spmm", layout_key(a.values, b), plan)
            return plan(a.values, b)
    return _spmm_raw(a.topology, a.values, b, bias, relu, batch, backend, path)
