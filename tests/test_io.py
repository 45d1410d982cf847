"""DLMC ``.smtx`` reading and writing (sgk.io)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import sgk
from sgk.io import load_smtx, read_smtx_topology, save_smtx

from _helpers import csr_from_lengths, gen

DLMC = Path(os.environ.get("SGK_DLMC", Path(__file__).resolve().parents[2] / "shared" / "dlmc"))


def _write(tmp_path, text: str, name="m.smtx") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# A 4×6 matrix with an empty first row and an empty third row.
OFFSETS = [0, 0, 3, 3, 5]
COLS = [1, 2, 5, 0, 4]


def _check_example(a: sgk.CSRMatrix):
    assert a.shape == (4, 6) and a.nnz == 5
    assert a.row_offsets.tolist() == OFFSETS and a.column_indices.tolist() == COLS
    a.validate()


def test_save_load_round_trip(tmp_path):
    a = csr_from_lengths([3, 0, 7, 1, 0], 9, gen(0))
    p = tmp_path / "a.smtx"
    save_smtx(p, a)
    lines = p.read_text().splitlines()
    assert len(lines) == 3 and lines[0] == "5, 9, 11"
    b = load_smtx(p, generator=gen(1))
    assert b.shape == a.shape
    assert torch.equal(b.row_offsets, a.row_offsets) and torch.equal(b.column_indices, a.column_indices)
    assert b.values.shape == (11,) and b.dtype == torch.float32 and bool((b.values != 0).all())
    shape, offsets, cols = read_smtx_topology(p)
    assert shape == (5, 9) and offsets.dtype == np.int64 and cols.tolist() == a.column_indices.tolist()


def test_save_load_round_trip_without_nonzeros(tmp_path):
    a = sgk.CSRMatrix(torch.zeros(4, dtype=torch.int32), torch.zeros(0, dtype=torch.int32), torch.zeros(0), (3, 2))
    p = tmp_path / "empty.smtx"
    save_smtx(p, a)
    b = load_smtx(p)
    assert b.shape == (3, 2) and b.nnz == 0 and b.row_offsets.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("sep", [", ", " ", ",", "\t"], ids=["comma-space", "space", "comma", "tab"])
def test_offsets_layout_separators(tmp_path, sep):
    text = sep.join(["4", "6", "5"]) + "\n" + sep.join(map(str, OFFSETS)) + "\n" + sep.join(map(str, COLS)) + "\n"
    _check_example(load_smtx(_write(tmp_path, text)))


def test_offsets_layout_crlf_and_no_trailing_newline(tmp_path):
    text = "4, 6, 5\r\n" + " ".join(map(str, OFFSETS)) + "\r\n" + " ".join(map(str, COLS))
    _check_example(load_smtx(_write(tmp_path, text)))


@pytest.mark.parametrize("sep", [" ", ", "], ids=["space", "comma"])
def test_one_line_of_columns_per_row(tmp_path, sep):
    rows = ["", "1 2 5", "", "0 4"]
    text = "4, 6, 5\n" + "\n".join(r.replace(" ", sep) for r in rows) + "\n"
    _check_example(load_smtx(_write(tmp_path, text)))


def test_one_line_per_row_then_trailing_blank_lines(tmp_path):
    rows = ["", "1 2 5", "", "0 4"]
    _check_example(load_smtx(_write(tmp_path, "4, 6, 5\n" + "\n".join(rows) + "\n\n\n")))


def test_one_line_per_row_whose_first_row_has_m_plus_1_columns(tmp_path):
    """Regression: a first row of exactly m + 1 columns was taken for an offsets line."""
    # 2×5 matrix, row 0 has 3 = m + 1 nonzeros: read as an offsets line, this file is inconsistent.
    text = "2, 5, 4\n0 1 3\n2\n"
    shape, offsets, cols = read_smtx_topology(_write(tmp_path, text))
    assert shape == (2, 5) and offsets.tolist() == [0, 3, 4] and cols.tolist() == [0, 1, 3, 2]


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"is empty"),
        ("4, 6\n0 0 3 3 5\n1 2 5 0 4\n", r"first line must be 'nrows, ncols, nnz'"),
        ("4, 6, 6\n0 0 3 3 5\n1 2 5 0 4\n", r"header says nnz = 6 but 5 column indices follow"),
        ("4, 6, 5\n0 0 3 3 5\n1 2 5 0\n", r"header says nnz = 5 but 4 column indices follow"),
        ("4, 6, 5\n0 0 3 3 4\n1 2 5 0 4\n", r"last row offset 4 != nnz 5"),
        ("5, 6, 5\n0 0 3 3 5\n1 2 5 0 4\n", r"expected 5 rows of column indices or an offsets line"),
        ("a, b, c\n", r"line 1: expected integers separated by commas or spaces, got 'a, b, c'"),
        ("-1, 4, 0\n", r"nrows, ncols and nnz must be >= 0"),
        ("2, 4, 2\n0 1 x\n1\n", r"line 2: expected integers"),
    ],
    ids=["empty-file", "short-header", "nnz-more", "nnz-fewer", "last-offset", "rows", "not-integers",
         "negative-header", "bad-row"],
)
def test_header_mismatch_errors(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(ValueError, match=r"sgk\.io\.read_smtx_topology\(\): .*" + match):
        load_smtx(p)


def test_load_validates_by_default(tmp_path):
    p = _write(tmp_path, "2, 4, 3\n0 2 3\n3 1 0\n")  # row 0 unsorted
    with pytest.raises(ValueError, match=r"strictly increasing"):
        load_smtx(p)
    a = load_smtx(p, validate=False)
    assert a.column_indices.tolist() == [3, 1, 0]


def test_load_values_options(tmp_path):
    p = _write(tmp_path, "4, 6, 5\n0 0 3 3 5\n1 2 5 0 4\n")
    ones = load_smtx(p, values="ones", dtype=torch.float16, batch_shape=(2,))
    assert ones.dtype == torch.float16 and ones.values.shape == (2, 5) and bool((ones.values == 1).all())
    given = torch.arange(1.0, 6.0, dtype=torch.float64)
    v = load_smtx(p, values=given, dtype=torch.float32)
    assert v.dtype == torch.float32 and v.values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    r1, r2 = load_smtx(p, generator=gen(3)), load_smtx(p, generator=gen(3))
    assert torch.equal(r1.values, r2.values)
    assert load_smtx(p, device="cpu").device.type == "cpu"
    with pytest.raises(ValueError, match=r"load_smtx\(\): values must be 'random', 'ones' or a tensor"):
        load_smtx(p, values="zeros")
    with pytest.raises(TypeError, match=r"load_smtx\(\): dtype must be floating"):
        load_smtx(p, dtype=torch.int32)


def test_save_rejects_non_csr(tmp_path):
    with pytest.raises(TypeError, match=r"save_smtx\(\): a must be a CSRMatrix, got Tensor"):
        save_smtx(tmp_path / "x.smtx", torch.eye(2))


def _one_dlmc_file() -> Path | None:
    if not DLMC.is_dir():
        return None
    files = sorted(DLMC.glob("transformer/magnitude_pruning/0.9/*.smtx")) or sorted(DLMC.rglob("*.smtx"))
    return files[0] if files else None


@pytest.mark.skipif(_one_dlmc_file() is None, reason=f"no DLMC files under {DLMC}")
def test_reads_a_real_dlmc_file():
    path = _one_dlmc_file()
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    m, k, nnz = (int(v) for v in lines[0].replace(",", " ").split())
    a = load_smtx(path, generator=gen(4))
    a.validate()
    assert a.shape == (m, k) and a.nnz == nnz and a.values.shape == (nnz,)
    assert 0.0 < a.density < 1.0
