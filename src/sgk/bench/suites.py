"""Benchmark suites: the problems a benchmark runs, as :class:`Case` lists.

Two suites exist for the sparse-matrix benchmarks, registered in :data:`SUITES`:

``synthetic`` (the default, needs no files)
    The shapes, sparsities and nonzero counts of the 158 DLMC matrices of the paper's benchmark
    (embedded below as :data:`DLMC_MATRICES`) with random topologies whose row-length coefficient
    of variation matches the real pruned layer (``CSRMatrix.random(distribution="skewed")``).
``dlmc``
    Every ``.smtx`` file under a DLMC directory, read from disk. Works on the 158-matrix subset and
    on the full public collection (``{model}/{pruning_method}/{sparsity}/{layer}.smtx``).

The dense width ``n`` follows the paper: Transformer matrices at N = 256 and N = 2048, ResNet-50
layers at their output pixel count for batch 1 (``rn50_batchsizes.txt``). For SDDMM the same
``n`` is the reduction length of the weight-gradient product (X m×n, Y k×n).

Two more are for the regimes beyond the paper (issue: tensor-core sparse paths):

``decode``
    Memory-bound inference SpMM: weights 8192×8192, 4096×14336 and 14336×4096 at N ∈ {1, 8, 16,
    32, 64} and uniform sparsity 50-95% (:data:`DECODE_WEIGHTS`, :data:`DECODE_N`,
    :data:`DECODE_SPARSITIES`); run it in bf16/fp16 against ``cublas_bf16``.
``blocksparse``
    A 4096×4096 block-sparse weight at N = 4096, blocks 16-128, block sparsity 50-95%, for each of
    the four products of a training step (``method``): fwd A·B, dsmm X·A, dgrad Aᵀ·dC, wgrad the
    block SDDMM (``sgk bench blocksparse``).

Other suites register a function with :func:`register_suite`.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

__all__ = [
    "Case",
    "SUITES",
    "register_suite",
    "get_cases",
    "synthetic_cases",
    "dlmc_cases",
    "find_dlmc_dir",
    "read_batchsizes",
    "parse_dlmc_path",
    "short_layer_name",
    "DLMC_MATRICES",
    "RN50_OUTPUT_PIXELS",
    "TRANSFORMER_N",
    "DLMC_MODELS",
    "decode_cases",
    "blocksparse_cases",
]

TRANSFORMER_N: tuple[int, ...] = (256, 2048)
"""The paper's batch × sequence widths for Transformer weight matrices."""

DEFAULT_N: tuple[int, ...] = TRANSFORMER_N
"""Widths used for ``.smtx`` files of a model other than rn50 (as for the Transformer)."""

DLMC_MODELS: tuple[str, ...] = ("rn50", "transformer")


@dataclass(frozen=True)
class Case:
    """One benchmark problem: a sparse m×k matrix (an ``.smtx`` file or a synthetic topology) and
    the dense width ``n``.

    ``key`` is the DLMC path suffix ``{model}/{method}/{level}/{layer}.smtx`` used to match
    anchor rows; a synthetic case carries the key of the DLMC matrix whose shape it copies.
    """

    model: str
    method: str
    level: str  # sparsity as written in the directory name, e.g. "0.9"
    layer: str
    m: int
    k: int
    n: int
    nnz: int
    source: str = "synthetic"  # "synthetic" | "dlmc"
    path: str | None = None  # the .smtx file (dlmc suite)
    row_cv: float | None = None  # target row-length coefficient of variation (synthetic suite)
    group: str = ""  # summary group, e.g. "rn50" or "transformer N=256"
    n_full: int = 0  # n before any reduction for the CPU path (0: same as n)
    block_size: int = 0  # block-sparse cases: the square block size (0: unstructured)

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", default_group(self.model, self.n))
        if not self.n_full:
            object.__setattr__(self, "n_full", self.n)

    @property
    def key(self) -> str:
        return f"{self.model}/{self.method}/{self.level}/{self.layer}.smtx"

    @property
    def sparsity(self) -> float:
        """Actual sparsity 1 - nnz/(m·k)."""
        return 1.0 - self.nnz / (self.m * self.k) if self.m * self.k else 0.0

    @property
    def nominal_sparsity(self) -> float:
        """The sparsity level of the directory name (e.g. 0.9), else the actual sparsity."""
        try:
            return float(self.level)
        except ValueError:
            return self.sparsity

    @property
    def matrix_id(self) -> str:
        """Identifies the sparse matrix (cases that differ only in n share it)."""
        return f"{self.source}:{self.path or self.key}"

    @property
    def label(self) -> str:
        """Short display name: ``rn50/0.9/bottleneck_1_block_group1_1_1`` (the method is shown
        only when it is not magnitude pruning)."""
        method = "" if self.method == "magnitude_pruning" else f"{self.method}/"
        return f"{self.model}/{method}{self.level}/{self.layer}"

    @property
    def name(self) -> str:
        return f"{self.label} n={self.n}"

    @property
    def short_name(self) -> str:
        method = "" if self.method == "magnitude_pruning" else f"{_short_method(self.method)}/"
        return f"{self.model}/{method}{self.level}/{short_layer_name(self.layer)} n={self.n}"

    def matches(self, text: str | None) -> bool:
        """Case-insensitive substring match against the key, label and ``n=N``."""
        if not text:
            return True
        hay = f"{self.key} {self.label} {self.short_name} n={self.n} {self.group}".lower()
        return text.lower() in hay

    def reduced(self, n_cap: int, elements_cap: int | None = None) -> "Case":
        """The same case with n capped (the CPU reference path). ``elements_cap``: a generated
        unstructured matrix (no file, no blocks) larger than this many elements is halved along
        its longer side until it fits, at the same density (the decode suite's 8192×8192 weights
        would take seconds a case to draw on the CPU); the label keeps the full shape, m and k
        say what ran."""
        m, k, nnz = self.m, self.k, self.nnz
        if elements_cap and self.path is None and not self.block_size and m * k > elements_cap:
            density = nnz / (m * k)
            while m * k > elements_cap:
                if m >= k:
                    m = max(1, m // 2)
                else:
                    k = max(1, k // 2)
            nnz = int(round(density * m * k))
        return dataclasses.replace(self, m=m, k=k, nnz=nnz, n=min(self.n, n_cap), n_full=self.n_full)


def default_group(model: str, n: int) -> str:
    """Summary group: ResNet-50 as one group, other models split by n (the paper's grouping)."""
    return model if model == "rn50" else f"{model} N={n}"


_METHOD_ABBREV = {
    "magnitude_pruning": "mag",
    "random_pruning": "rand",
    "variational_dropout": "vd",
    "extended_magnitude_pruning": "emag",
    "l0_regularization": "l0",
}


def _short_method(method: str) -> str:
    return _METHOD_ABBREV.get(method, method)


_LAYER_ABBREV: tuple[tuple[str, str], ...] = (
    (r"^body_", ""),
    (r"decoder_layer_(\d+)_", r"dec\1."),
    (r"encoder_layer_(\d+)_", r"enc\1."),
    (r"multihead_attention_", ""),
    (r"_attention_", "_attn."),
    (r"output_transform", "out"),
    (r"_fully_connected$", ""),
    (r"bottleneck_", "bn"),
    (r"projection", "proj"),
    (r"block_group", "g"),
)


def short_layer_name(layer: str) -> str:
    """A compact display name for long DLMC layer names (the JSON keeps the full name)."""
    for pattern, repl in _LAYER_ABBREV:
        layer = re.sub(pattern, repl, layer)
    return layer


# -- the embedded DLMC table ----------------------------------------------------------------------
# Derived from the DLMC subset's dlmc.csv (158 matrices, magnitude pruning) and rn50_batchsizes.txt:
# shape, n values, nonzero count and the row-length coefficient of variation (std / mean of the
# nonzeros per row) of each real matrix. Sorted like the files' paths.
# fmt: off
DLMC_MATRICES: tuple[tuple[str, str, str, int, int, tuple[int, ...], int, float], ...] = (
    # (model, sparsity, layer, m, k, n values, nnz, row-length cv)
    ('rn50', '0.8', 'bottleneck_1_block_group1_1_1', 64, 256, (3136,), 3276, 0.256),
    ('rn50', '0.8', 'bottleneck_1_block_group2_1_1', 128, 512, (784,), 13107, 0.208),
    ('rn50', '0.8', 'bottleneck_1_block_group2_3_1', 128, 512, (784,), 13107, 0.205),
    ('rn50', '0.8', 'bottleneck_1_block_group3_2_1', 256, 1024, (196,), 52428, 0.165),
    ('rn50', '0.8', 'bottleneck_1_block_group3_4_1', 256, 1024, (196,), 52428, 0.144),
    ('rn50', '0.8', 'bottleneck_1_block_group4_1_1', 512, 2048, (49,), 209715, 0.12),
    ('rn50', '0.8', 'bottleneck_1_block_group_projection_block_group1', 64, 64, (3136,), 819, 0.465),
    ('rn50', '0.8', 'bottleneck_1_block_group_projection_block_group3', 256, 512, (784,), 26214, 0.178),
    ('rn50', '0.8', 'bottleneck_2_block_group1_1_1', 64, 576, (3136,), 7372, 0.314),
    ('rn50', '0.8', 'bottleneck_2_block_group2_1_1', 128, 1152, (784,), 29491, 0.231),
    ('rn50', '0.8', 'bottleneck_2_block_group2_3_1', 128, 1152, (784,), 29491, 0.194),
    ('rn50', '0.8', 'bottleneck_2_block_group3_2_1', 256, 2304, (196,), 117964, 0.182),
    ('rn50', '0.8', 'bottleneck_2_block_group3_4_1', 256, 2304, (196,), 117964, 0.107),
    ('rn50', '0.8', 'bottleneck_2_block_group4_1_1', 512, 4608, (49,), 471859, 0.079),
    ('rn50', '0.8', 'bottleneck_2_block_group_projection_block_group1', 64, 576, (3136,), 7372, 0.345),
    ('rn50', '0.8', 'bottleneck_2_block_group_projection_block_group3', 256, 2304, (196,), 117964, 0.143),
    ('rn50', '0.8', 'bottleneck_3_block_group1_1_1', 256, 64, (3136,), 3276, 0.755),
    ('rn50', '0.8', 'bottleneck_3_block_group2_1_1', 512, 128, (784,), 13107, 0.82),
    ('rn50', '0.8', 'bottleneck_3_block_group2_3_1', 512, 128, (784,), 13107, 0.577),
    ('rn50', '0.8', 'bottleneck_3_block_group3_2_1', 1024, 256, (196,), 52428, 0.426),
    ('rn50', '0.8', 'bottleneck_3_block_group3_4_1', 1024, 256, (196,), 52428, 0.435),
    ('rn50', '0.8', 'bottleneck_3_block_group4_1_1', 2048, 512, (49,), 209715, 0.251),
    ('rn50', '0.8', 'bottleneck_3_block_group_projection_block_group1', 256, 64, (3136,), 3276, 0.64),
    ('rn50', '0.8', 'bottleneck_3_block_group_projection_block_group3', 1024, 256, (196,), 52428, 0.361),
    ('rn50', '0.8', 'bottleneck_projection_block_group_projection_block_group1', 256, 64, (3136,), 3276, 0.634),
    ('rn50', '0.8', 'bottleneck_projection_block_group_projection_block_group3', 1024, 512, (196,), 104857, 0.289),
    ('rn50', '0.8', 'final_dense', 1000, 2048, (1,), 409599, 0.235),
    ('rn50', '0.9', 'bottleneck_1_block_group1_1_1', 64, 256, (3136,), 1638, 0.327),
    ('rn50', '0.9', 'bottleneck_1_block_group2_1_1', 128, 512, (784,), 6553, 0.346),
    ('rn50', '0.9', 'bottleneck_1_block_group2_3_1', 128, 512, (784,), 6553, 0.278),
    ('rn50', '0.9', 'bottleneck_1_block_group3_2_1', 256, 1024, (196,), 26214, 0.219),
    ('rn50', '0.9', 'bottleneck_1_block_group3_4_1', 256, 1024, (196,), 26214, 0.198),
    ('rn50', '0.9', 'bottleneck_1_block_group4_1_1', 512, 2048, (49,), 104857, 0.154),
    ('rn50', '0.9', 'bottleneck_1_block_group_projection_block_group1', 64, 64, (3136,), 409, 0.696),
    ('rn50', '0.9', 'bottleneck_1_block_group_projection_block_group3', 256, 512, (784,), 13107, 0.242),
    ('rn50', '0.9', 'bottleneck_2_block_group1_1_1', 64, 576, (3136,), 3686, 0.448),
    ('rn50', '0.9', 'bottleneck_2_block_group2_1_1', 128, 1152, (784,), 14745, 0.345),
    ('rn50', '0.9', 'bottleneck_2_block_group2_3_1', 128, 1152, (784,), 14745, 0.271),
    ('rn50', '0.9', 'bottleneck_2_block_group3_2_1', 256, 2304, (196,), 58982, 0.279),
    ('rn50', '0.9', 'bottleneck_2_block_group3_4_1', 256, 2304, (196,), 58982, 0.152),
    ('rn50', '0.9', 'bottleneck_2_block_group4_1_1', 512, 4608, (49,), 235929, 0.122),
    ('rn50', '0.9', 'bottleneck_2_block_group_projection_block_group1', 64, 576, (3136,), 3686, 0.425),
    ('rn50', '0.9', 'bottleneck_2_block_group_projection_block_group3', 256, 2304, (196,), 58982, 0.203),
    ('rn50', '0.9', 'bottleneck_3_block_group1_1_1', 256, 64, (3136,), 1638, 0.863),
    ('rn50', '0.9', 'bottleneck_3_block_group2_1_1', 512, 128, (784,), 6553, 1.166),
    ('rn50', '0.9', 'bottleneck_3_block_group2_3_1', 512, 128, (784,), 6553, 0.837),
    ('rn50', '0.9', 'bottleneck_3_block_group3_2_1', 1024, 256, (196,), 26214, 0.598),
    ('rn50', '0.9', 'bottleneck_3_block_group3_4_1', 1024, 256, (196,), 26214, 0.52),
    ('rn50', '0.9', 'bottleneck_3_block_group4_1_1', 2048, 512, (49,), 104857, 0.431),
    ('rn50', '0.9', 'bottleneck_3_block_group_projection_block_group1', 256, 64, (3136,), 1638, 0.786),
    ('rn50', '0.9', 'bottleneck_3_block_group_projection_block_group3', 1024, 256, (196,), 26214, 0.524),
    ('rn50', '0.9', 'bottleneck_projection_block_group_projection_block_group1', 256, 64, (3136,), 1638, 0.841),
    ('rn50', '0.9', 'bottleneck_projection_block_group_projection_block_group3', 1024, 512, (196,), 52428, 0.459),
    ('rn50', '0.9', 'final_dense', 1000, 2048, (1,), 204800, 0.25),
    ('rn50', '0.95', 'bottleneck_1_block_group1_1_1', 64, 256, (3136,), 819, 0.402),
    ('rn50', '0.95', 'bottleneck_1_block_group2_1_1', 128, 512, (784,), 3276, 0.429),
    ('rn50', '0.95', 'bottleneck_1_block_group2_3_1', 128, 512, (784,), 3276, 0.37),
    ('rn50', '0.95', 'bottleneck_1_block_group3_2_1', 256, 1024, (196,), 13107, 0.273),
    ('rn50', '0.95', 'bottleneck_1_block_group3_4_1', 256, 1024, (196,), 13107, 0.257),
    ('rn50', '0.95', 'bottleneck_1_block_group4_1_1', 512, 2048, (49,), 52428, 0.189),
    ('rn50', '0.95', 'bottleneck_1_block_group_projection_block_group1', 64, 64, (3136,), 204, 0.661),
    ('rn50', '0.95', 'bottleneck_1_block_group_projection_block_group3', 256, 512, (784,), 6553, 0.305),
    ('rn50', '0.95', 'bottleneck_2_block_group1_1_1', 64, 576, (3136,), 1843, 0.478),
    ('rn50', '0.95', 'bottleneck_2_block_group2_1_1', 128, 1152, (784,), 7372, 0.45),
    ('rn50', '0.95', 'bottleneck_2_block_group2_3_1', 128, 1152, (784,), 7372, 0.306),
    ('rn50', '0.95', 'bottleneck_2_block_group3_2_1', 256, 2304, (196,), 29491, 0.398),
    ('rn50', '0.95', 'bottleneck_2_block_group3_4_1', 256, 2304, (196,), 29491, 0.236),
    ('rn50', '0.95', 'bottleneck_2_block_group4_1_1', 512, 4608, (49,), 117964, 0.197),
    ('rn50', '0.95', 'bottleneck_2_block_group_projection_block_group1', 64, 576, (3136,), 1843, 0.633),
    ('rn50', '0.95', 'bottleneck_2_block_group_projection_block_group3', 256, 2304, (196,), 29491, 0.256),
    ('rn50', '0.95', 'bottleneck_3_block_group1_1_1', 256, 64, (3136,), 819, 1.236),
    ('rn50', '0.95', 'bottleneck_3_block_group2_1_1', 512, 128, (784,), 3276, 0.935),
    ('rn50', '0.95', 'bottleneck_3_block_group2_3_1', 512, 128, (784,), 3276, 1.011),
    ('rn50', '0.95', 'bottleneck_3_block_group3_2_1', 1024, 256, (196,), 13107, 0.977),
    ('rn50', '0.95', 'bottleneck_3_block_group3_4_1', 1024, 256, (196,), 13107, 0.754),
    ('rn50', '0.95', 'bottleneck_3_block_group4_1_1', 2048, 512, (49,), 52428, 0.644),
    ('rn50', '0.95', 'bottleneck_3_block_group_projection_block_group1', 256, 64, (3136,), 819, 0.946),
    ('rn50', '0.95', 'bottleneck_3_block_group_projection_block_group3', 1024, 256, (196,), 13107, 0.656),
    ('rn50', '0.95', 'bottleneck_projection_block_group_projection_block_group1', 256, 64, (3136,), 819, 1.018),
    ('rn50', '0.95', 'bottleneck_projection_block_group_projection_block_group3', 1024, 512, (196,), 26214, 0.551),
    ('rn50', '0.95', 'final_dense', 1000, 2048, (1,), 102400, 0.206),
    ('rn50', '0.98', 'bottleneck_1_block_group1_1_1', 64, 256, (3136,), 327, 0.5),
    ('rn50', '0.98', 'bottleneck_1_block_group2_1_1', 128, 512, (784,), 1310, 0.409),
    ('rn50', '0.98', 'bottleneck_1_block_group2_3_1', 128, 512, (784,), 1310, 0.392),
    ('rn50', '0.98', 'bottleneck_1_block_group3_2_1', 256, 1024, (196,), 5242, 0.29),
    ('rn50', '0.98', 'bottleneck_1_block_group3_4_1', 256, 1024, (196,), 5242, 0.261),
    ('rn50', '0.98', 'bottleneck_1_block_group4_1_1', 512, 2048, (49,), 20971, 0.212),
    ('rn50', '0.98', 'bottleneck_1_block_group_projection_block_group1', 64, 64, (3136,), 81, 0.716),
    ('rn50', '0.98', 'bottleneck_1_block_group_projection_block_group3', 256, 512, (784,), 2621, 0.345),
    ('rn50', '0.98', 'bottleneck_2_block_group1_1_1', 64, 576, (3136,), 737, 0.56),
    ('rn50', '0.98', 'bottleneck_2_block_group2_1_1', 128, 1152, (784,), 2949, 0.536),
    ('rn50', '0.98', 'bottleneck_2_block_group2_3_1', 128, 1152, (784,), 2949, 0.341),
    ('rn50', '0.98', 'bottleneck_2_block_group3_2_1', 256, 2304, (196,), 11796, 0.473),
    ('rn50', '0.98', 'bottleneck_2_block_group3_4_1', 256, 2304, (196,), 11796, 0.247),
    ('rn50', '0.98', 'bottleneck_2_block_group4_1_1', 512, 4608, (49,), 47185, 0.232),
    ('rn50', '0.98', 'bottleneck_2_block_group_projection_block_group1', 64, 576, (3136,), 737, 0.75),
    ('rn50', '0.98', 'bottleneck_2_block_group_projection_block_group3', 256, 2304, (196,), 11796, 0.241),
    ('rn50', '0.98', 'bottleneck_3_block_group1_1_1', 256, 64, (3136,), 327, 1.085),
    ('rn50', '0.98', 'bottleneck_3_block_group2_1_1', 512, 128, (784,), 1310, 1.573),
    ('rn50', '0.98', 'bottleneck_3_block_group2_3_1', 512, 128, (784,), 1310, 1.093),
    ('rn50', '0.98', 'bottleneck_3_block_group3_2_1', 1024, 256, (196,), 5242, 0.86),
    ('rn50', '0.98', 'bottleneck_3_block_group3_4_1', 1024, 256, (196,), 5242, 0.917),
    ('rn50', '0.98', 'bottleneck_3_block_group4_1_1', 2048, 512, (49,), 20971, 1.024),
    ('rn50', '0.98', 'bottleneck_3_block_group_projection_block_group1', 256, 64, (3136,), 327, 1.178),
    ('rn50', '0.98', 'bottleneck_3_block_group_projection_block_group3', 1024, 256, (196,), 5242, 0.678),
    ('rn50', '0.98', 'bottleneck_projection_block_group_projection_block_group1', 256, 64, (3136,), 327, 1.231),
    ('rn50', '0.98', 'bottleneck_projection_block_group_projection_block_group3', 1024, 512, (196,), 10485, 0.649),
    ('rn50', '0.98', 'final_dense', 1000, 2048, (1,), 40959, 0.209),
    ('transformer', '0.7', 'body_decoder_layer_0_encdec_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 78643, 0.23),
    ('transformer', '0.7', 'body_decoder_layer_0_encdec_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 78642, 0.192),
    ('transformer', '0.7', 'body_decoder_layer_0_encdec_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 78643, 0.19),
    ('transformer', '0.7', 'body_decoder_layer_0_encdec_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 78643, 0.22),
    ('transformer', '0.7', 'body_decoder_layer_0_ffn_conv1_fully_connected', 2048, 512, (256, 2048), 314572, 0.144),
    ('transformer', '0.7', 'body_decoder_layer_0_ffn_conv2_fully_connected', 512, 2048, (256, 2048), 314572, 0.195),
    ('transformer', '0.7', 'body_decoder_layer_0_self_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 78643, 0.339),
    ('transformer', '0.7', 'body_decoder_layer_0_self_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 78643, 0.199),
    ('transformer', '0.7', 'body_decoder_layer_0_self_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 78643, 0.331),
    ('transformer', '0.7', 'body_decoder_layer_0_self_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 78643, 0.196),
    ('transformer', '0.8', 'body_decoder_layer_0_encdec_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 52428, 0.216),
    ('transformer', '0.8', 'body_decoder_layer_0_encdec_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 52428, 0.202),
    ('transformer', '0.8', 'body_decoder_layer_0_encdec_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 52428, 0.175),
    ('transformer', '0.8', 'body_decoder_layer_0_encdec_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 52428, 0.123),
    ('transformer', '0.8', 'body_decoder_layer_0_ffn_conv1_fully_connected', 2048, 512, (256, 2048), 209715, 0.154),
    ('transformer', '0.8', 'body_decoder_layer_0_ffn_conv2_fully_connected', 512, 2048, (256, 2048), 209715, 0.136),
    ('transformer', '0.8', 'body_decoder_layer_0_self_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 52428, 0.317),
    ('transformer', '0.8', 'body_decoder_layer_0_self_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 52428, 0.208),
    ('transformer', '0.8', 'body_decoder_layer_0_self_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 52428, 0.334),
    ('transformer', '0.8', 'body_decoder_layer_0_self_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 52428, 0.248),
    ('transformer', '0.9', 'body_decoder_layer_0_encdec_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 26214, 0.335),
    ('transformer', '0.9', 'body_decoder_layer_0_encdec_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 26214, 0.363),
    ('transformer', '0.9', 'body_decoder_layer_0_encdec_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 26214, 0.312),
    ('transformer', '0.9', 'body_decoder_layer_0_encdec_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 26214, 0.27),
    ('transformer', '0.9', 'body_decoder_layer_0_ffn_conv1_fully_connected', 2048, 512, (256, 2048), 104857, 0.251),
    ('transformer', '0.9', 'body_decoder_layer_0_ffn_conv2_fully_connected', 512, 2048, (256, 2048), 104857, 0.205),
    ('transformer', '0.9', 'body_decoder_layer_0_self_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 26214, 0.297),
    ('transformer', '0.9', 'body_decoder_layer_0_self_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 26214, 0.364),
    ('transformer', '0.9', 'body_decoder_layer_0_self_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 26214, 0.312),
    ('transformer', '0.9', 'body_decoder_layer_0_self_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 26214, 0.285),
    ('transformer', '0.95', 'body_decoder_layer_0_encdec_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 13107, 0.39),
    ('transformer', '0.95', 'body_decoder_layer_0_encdec_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 13107, 0.62),
    ('transformer', '0.95', 'body_decoder_layer_0_encdec_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 13107, 0.351),
    ('transformer', '0.95', 'body_decoder_layer_0_encdec_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 13107, 0.42),
    ('transformer', '0.95', 'body_decoder_layer_0_ffn_conv1_fully_connected', 2048, 512, (256, 2048), 52428, 0.394),
    ('transformer', '0.95', 'body_decoder_layer_0_ffn_conv2_fully_connected', 512, 2048, (256, 2048), 52428, 0.293),
    ('transformer', '0.95', 'body_decoder_layer_0_self_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 13107, 0.532),
    ('transformer', '0.95', 'body_decoder_layer_0_self_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 13107, 0.622),
    ('transformer', '0.95', 'body_decoder_layer_0_self_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 13107, 0.544),
    ('transformer', '0.95', 'body_decoder_layer_0_self_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 13107, 0.511),
    ('transformer', '0.98', 'body_decoder_layer_0_encdec_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 5242, 0.437),
    ('transformer', '0.98', 'body_decoder_layer_0_encdec_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 5242, 1.407),
    ('transformer', '0.98', 'body_decoder_layer_0_encdec_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 5242, 0.462),
    ('transformer', '0.98', 'body_decoder_layer_0_encdec_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 5242, 0.444),
    ('transformer', '0.98', 'body_decoder_layer_0_ffn_conv1_fully_connected', 2048, 512, (256, 2048), 20971, 0.592),
    ('transformer', '0.98', 'body_decoder_layer_0_ffn_conv2_fully_connected', 512, 2048, (256, 2048), 20971, 0.376),
    ('transformer', '0.98', 'body_decoder_layer_0_self_attention_multihead_attention_k_fully_connected', 512, 512, (256, 2048), 5242, 0.586),
    ('transformer', '0.98', 'body_decoder_layer_0_self_attention_multihead_attention_output_transform_fully_connected', 512, 512, (256, 2048), 5242, 0.858),
    ('transformer', '0.98', 'body_decoder_layer_0_self_attention_multihead_attention_q_fully_connected', 512, 512, (256, 2048), 5242, 0.603),
    ('transformer', '0.98', 'body_decoder_layer_0_self_attention_multihead_attention_v_fully_connected', 512, 512, (256, 2048), 5242, 0.518),
)

RN50_OUTPUT_PIXELS: dict[str, int] = {
    'bottleneck_1_block_group1_1_1': 3136,
    'bottleneck_1_block_group1_2_1': 3136,
    'bottleneck_1_block_group2_1_1': 784,
    'bottleneck_1_block_group2_2_1': 784,
    'bottleneck_1_block_group2_3_1': 784,
    'bottleneck_1_block_group3_1_1': 196,
    'bottleneck_1_block_group3_2_1': 196,
    'bottleneck_1_block_group3_3_1': 196,
    'bottleneck_1_block_group3_4_1': 196,
    'bottleneck_1_block_group3_5_1': 196,
    'bottleneck_1_block_group4_1_1': 49,
    'bottleneck_1_block_group4_2_1': 49,
    'bottleneck_1_block_group_projection_block_group1': 3136,
    'bottleneck_1_block_group_projection_block_group2': 3136,
    'bottleneck_1_block_group_projection_block_group3': 784,
    'bottleneck_1_block_group_projection_block_group4': 196,
    'bottleneck_2_block_group1_1_1': 3136,
    'bottleneck_2_block_group1_2_1': 3136,
    'bottleneck_2_block_group2_1_1': 784,
    'bottleneck_2_block_group2_2_1': 784,
    'bottleneck_2_block_group2_3_1': 784,
    'bottleneck_2_block_group3_1_1': 196,
    'bottleneck_2_block_group3_2_1': 196,
    'bottleneck_2_block_group3_3_1': 196,
    'bottleneck_2_block_group3_4_1': 196,
    'bottleneck_2_block_group3_5_1': 196,
    'bottleneck_2_block_group4_1_1': 49,
    'bottleneck_2_block_group4_2_1': 49,
    'bottleneck_2_block_group_projection_block_group1': 3136,
    'bottleneck_2_block_group_projection_block_group2': 784,
    'bottleneck_2_block_group_projection_block_group3': 196,
    'bottleneck_2_block_group_projection_block_group4': 49,
    'bottleneck_3_block_group1_1_1': 3136,
    'bottleneck_3_block_group1_2_1': 3136,
    'bottleneck_3_block_group2_1_1': 784,
    'bottleneck_3_block_group2_2_1': 784,
    'bottleneck_3_block_group2_3_1': 784,
    'bottleneck_3_block_group3_1_1': 196,
    'bottleneck_3_block_group3_2_1': 196,
    'bottleneck_3_block_group3_3_1': 196,
    'bottleneck_3_block_group3_4_1': 196,
    'bottleneck_3_block_group3_5_1': 196,
    'bottleneck_3_block_group4_1_1': 49,
    'bottleneck_3_block_group4_2_1': 49,
    'bottleneck_3_block_group_projection_block_group1': 3136,
    'bottleneck_3_block_group_projection_block_group2': 784,
    'bottleneck_3_block_group_projection_block_group3': 196,
    'bottleneck_3_block_group_projection_block_group4': 49,
    'bottleneck_projection_block_group_projection_block_group1': 3136,
    'bottleneck_projection_block_group_projection_block_group2': 784,
    'bottleneck_projection_block_group_projection_block_group3': 196,
    'bottleneck_projection_block_group_projection_block_group4': 49,
    'final_dense': 1,
    'initial_conv': 12544,
}
# fmt: on


def _nonempty(cases: list[Case], what: str) -> list[Case]:
    if not cases:
        raise ValueError(f"{what}: no benchmark cases found")
    return cases


def synthetic_cases(op: str = "spmm") -> list[Case]:
    """The ``synthetic`` suite: one case per (DLMC matrix, n), with random skewed topologies.

    For ``op="spmm"`` that is 108 ResNet-50 cases and 50 × 2 Transformer cases (208); SDDMM uses
    the same list (n is the reduction length there).
    """
    cases = []
    for model, level, layer, m, k, ns, nnz, cv in DLMC_MATRICES:
        for n in ns:
            cases.append(
                Case(model, "magnitude_pruning", level, layer, m, k, n, nnz, source="synthetic", row_cv=cv)
            )
    return cases


# -- the dlmc suite: files on disk --------------------------------------------------------------
def find_dlmc_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The DLMC directory: ``explicit``, else ``$SGK_DLMC_DIR``, else ``./.dlmc``, else
    ``../shared/dlmc``, whichever exists first. Raises ValueError naming what was tried."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_dir():
            raise ValueError(f"--dlmc-dir {explicit}: no such directory")
        return p
    tried = []
    env = os.environ.get("SGK_DLMC_DIR")
    candidates = ([Path(env).expanduser()] if env else []) + [Path(".dlmc"), Path("..") / "shared" / "dlmc"]
    for p in candidates:
        tried.append(str(p))
        if p.is_dir():
            return p
    raise ValueError(
        "no DLMC directory found (tried "
        + (f"$SGK_DLMC_DIR={env}, " if env else "$SGK_DLMC_DIR (unset), ")
        + ", ".join(tried[1 if env else 0 :])
        + "); pass --dlmc-dir PATH, set SGK_DLMC_DIR, or use --suite synthetic"
    )


def read_batchsizes(path: str | os.PathLike) -> dict[str, int]:
    """Parse ``rn50_batchsizes.txt``: one ``layer,n`` (comma or whitespace separated) per line."""
    out: dict[str, int] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.replace(",", " ").split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{lineno}: expected 'layer,n', got {line!r}")
            out[Path(parts[0]).stem if parts[0].endswith(".smtx") else parts[0]] = int(parts[1])
    return out


def _find_batchsizes(root: Path) -> dict[str, int] | None:
    """``rn50_batchsizes.txt`` in the DLMC root or one of its parents (for a root like dlmc/rn50)."""
    for d in (root, *root.resolve().parents[:3]):
        p = d / "rn50_batchsizes.txt"
        if p.is_file():
            return read_batchsizes(p)
    return None


def parse_dlmc_path(path: str | os.PathLike) -> tuple[str, str, str, str]:
    """``(model, method, level, layer)`` of ``.../{model}/{method}/{level}/{layer}.smtx``.

    The model is the last path component naming a known DLMC model (rn50, transformer); for other
    trees the last three directories are taken as model, method and level.
    """
    p = Path(path)
    parts = p.parts[:-1]
    layer = p.stem
    idx = max((i for i, part in enumerate(parts) if part in DLMC_MODELS), default=None)
    if idx is not None:
        model, rest = parts[idx], list(parts[idx + 1 :])
        if len(rest) >= 2:
            return model, rest[0], rest[-1], layer
        if len(rest) == 1:
            return (model, "unknown", rest[0], layer) if _is_level(rest[0]) else (model, rest[0], "unknown", layer)
        return model, "unknown", "unknown", layer
    tail = list(parts[-3:])
    while len(tail) < 3:
        tail.insert(0, "unknown")
    return tail[0], tail[1], tail[2], layer


def _is_level(text: str) -> bool:
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


def _read_header(path: Path) -> tuple[int, int, int]:
    """``(m, k, nnz)`` from the first line of an ``.smtx`` file (the rest is not read)."""
    with open(path) as f:
        first = f.readline()
    vals = first.replace(",", " ").split()
    try:
        m, k, nnz = (int(v) for v in vals) if len(vals) == 3 else (-1, -1, -1)
    except ValueError:
        m = k = nnz = -1
    if min(m, k, nnz) < 0:
        raise ValueError(f"{path}: first line must be 'nrows, ncols, nnz' (integers >= 0), got {first.strip()!r}")
    return m, k, nnz


def dlmc_cases(
    op: str = "spmm",
    root: str | os.PathLike | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> list[Case]:
    """The ``dlmc`` suite: every ``.smtx`` under ``root`` (recursive, sorted by path).

    n per matrix: rn50 → its output pixels from ``rn50_batchsizes.txt`` (key = file stem; files
    without an entry are skipped with a warning); transformer (and any other model) → 256 and
    2048. Only the header line of each file is read here.
    """
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    root = find_dlmc_dir(root)
    files = sorted(root.rglob("*.smtx"))
    if not files:
        raise ValueError(f"no .smtx files under {root}")
    batchsizes = _find_batchsizes(root)
    cases: list[Case] = []
    missing: list[str] = []
    for f in files:
        model, method, level, layer = parse_dlmc_path(f)
        m, k, nnz = _read_header(f)
        if model == "rn50":
            if batchsizes is None or layer not in batchsizes:
                missing.append(str(f.relative_to(root)))
                continue
            ns: Iterable[int] = (batchsizes[layer],)
        else:
            ns = DEFAULT_N
        for n in ns:
            cases.append(Case(model, method, level, layer, m, k, n, nnz, source="dlmc", path=str(f)))
    if missing:
        where = "no rn50_batchsizes.txt found" if batchsizes is None else "not in rn50_batchsizes.txt"
        warn(f"skipped {len(missing)} rn50 matrices ({where}), e.g. {missing[0]}")
    return _nonempty(cases, f"--suite dlmc under {root}")


# -- registry ---------------------------------------------------------------------------------
SuiteFn = Callable[..., list[Case]]
SUITES: dict[str, tuple[SuiteFn, str]] = {}
"""name -> (function(op, **options) -> cases, one-line description)."""


def register_suite(name: str, help: str) -> Callable[[SuiteFn], SuiteFn]:
    """Decorator adding a suite function to :data:`SUITES`."""

    def deco(fn: SuiteFn) -> SuiteFn:
        SUITES[name] = (fn, help)
        return fn

    return deco


register_suite("synthetic", "DLMC shapes and sparsities, random topologies with the real row-length spread (no files)")(
    lambda op, **_: synthetic_cases(op)
)
register_suite("dlmc", "every .smtx under --dlmc-dir (default $SGK_DLMC_DIR, ./.dlmc, ../shared/dlmc)")(
    lambda op, dlmc_dir=None, **_: dlmc_cases(op, dlmc_dir)
)

DECODE_WEIGHTS: tuple[tuple[int, int], ...] = ((8192, 8192), (4096, 14336), (14336, 4096))
"""(m, k) of the decode suite: a square projection and an LLM MLP's up and down projections."""
DECODE_N: tuple[int, ...] = (1, 8, 16, 32, 64)
DECODE_SPARSITIES: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95)


def decode_cases(op: str = "spmm") -> list[Case]:
    """The ``decode`` suite (uniform random topologies): every weight × sparsity × N."""
    cases = []
    for m, k in DECODE_WEIGHTS:
        for s in DECODE_SPARSITIES:
            for n in DECODE_N:
                nnz = int(round((1.0 - s) * m * k))
                cases.append(Case("decode", "uniform", f"{s:g}", f"{m}x{k}", m, k, n, nnz, group=f"decode N={n}"))
    return cases


BLOCKSPARSE_SHAPE: tuple[int, int, int] = (4096, 4096, 4096)
BLOCKSPARSE_BLOCKS: tuple[int, ...] = (16, 32, 64, 128)
BLOCKSPARSE_SPARSITIES: tuple[float, ...] = (0.5, 0.7, 0.9, 0.95)
BLOCKSPARSE_PRODUCTS: tuple[str, ...] = ("fwd", "dsmm", "dgrad", "wgrad")


def blocksparse_cases(op: str = "blocksparse") -> list[Case]:
    """The ``blocksparse`` suite: product × block size × block sparsity on a 4096×4096 weight at
    N = 4096. ``nnz`` counts stored entries (kept blocks × bs²)."""
    m, k, n = BLOCKSPARSE_SHAPE
    cases = []
    for product in BLOCKSPARSE_PRODUCTS:
        for bs in BLOCKSPARSE_BLOCKS:
            for s in BLOCKSPARSE_SPARSITIES:
                blocks = (m // bs) * (k // bs)
                nnz = int(round((1.0 - s) * blocks)) * bs * bs
                cases.append(
                    Case("blocksparse", product, f"{s:g}", f"{m}x{k}_b{bs}", m, k, n, nnz, group=f"{product} b{bs}", block_size=bs)
                )
    return cases


register_suite("decode", "memory-bound SpMM: 8192², 4096×14336, 14336×4096 weights, N 1-64, sparsity 50-95% (uniform)")(
    lambda op, **_: decode_cases(op)
)
register_suite("blocksparse", "4096² block-sparse weight, N = 4096, blocks 16-128, 50-95%: fwd, dsmm, dgrad, wgrad")(
    lambda op, **_: blocksparse_cases(op)
)


def get_cases(suite: str, op: str, **options) -> list[Case]:
    """The cases of a registered suite for an op (``options``: e.g. ``dlmc_dir``)."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    return SUITES[suite][0](op, **options)

