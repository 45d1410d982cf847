"""The ``sgk`` command line, called in-process (CPU reference path, fast)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sgk.cli import build_parser, main


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("sgk", "torch", "triton", "python", "numpy", "CUDA", "TRITON_INTERPRET", "spmm", "sddmm"):
        assert word in out
    assert "CPU tensors:  pure-torch reference" in out


def test_bench_spmm_cpu_json(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    assert main(["bench", "spmm", "--limit", "2", "--device", "cpu", "--out", str(out_json)]) == 0
    captured = capsys.readouterr()
    assert "no CUDA GPU: running the reference path at reduced size" in captured.out
    assert "[1/2]" in captured.err and "[2/2]" in captured.err
    assert "geomean speedup" in captured.out and "vs cusparse" in captured.out
    doc = json.loads(out_json.read_text())
    assert doc["benchmark"] == "spmm" and doc["config"]["reduced_cpu_path"] is True
    assert len(doc["cases"]) == 2 and all(c["status"] == "ok" for c in doc["cases"])
    assert all(c["n"] <= 64 for c in doc["cases"])
    assert doc["provenance"]["argv"][:3] == ["sgk", "bench", "spmm"]


def test_bench_spmm_cpu_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out_json, out_png = tmp_path / "r.json", tmp_path / "p.png"
    rc = main(["bench", "spmm", "--limit", "2", "--device", "cpu", "-q", "--out", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(out_json.read_text())["cases"]


def test_bench_sddmm_bf16_quiet(tmp_path, capsys):
    rc = main(["bench", "sddmm", "--dtype", "bf16", "--impl", "sgk,cublas_bf16,cusparse", "--limit", "1",
               "--device", "cpu", "-q", "--filter", "transformer", "--out", str(tmp_path / "s.json")])
    assert rc == 0
    captured = capsys.readouterr()
    assert "[1/1]" not in captured.err
    assert "cusparse[fp32] ms" in captured.out
    doc = json.loads((tmp_path / "s.json").read_text())
    (case,) = doc["cases"]
    assert case["model"] == "transformer" and case["impls"]["cusparse"]["precision"] == "fp32"


def test_bench_dlmc_dir(tmp_path, capsys):
    root = tmp_path / "dlmc"
    f = root / "transformer" / "random_pruning" / "0.5" / "w.smtx"
    f.parent.mkdir(parents=True)
    f.write_text("3, 4, 5\n0 2 3 5\n0 3 1 0 2\n")
    rc = main(["bench", "spmm", "--suite", "dlmc", "--dlmc-dir", str(root), "--device", "cpu", "--anchors", "none"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "transformer/random_pruning/0.5/w" in out.replace("rand/", "random_pruning/")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "spmm", "--dtype", "fp8"], "invalid choice"),
        (["bench", "spmm", "--impl", "sgk,magma"], "unknown implementation magma"),
        (["bench", "spmm", "--limit", "0"], "positive integer"),
        (["bench", "nosuch"], "invalid choice"),
        (["bench"], "required"),
        (["bench", "spmm", "--suite", "dlmc", "--dlmc-dir", "/no/such/dir"], "no such directory"),
        (["bench", "spmm", "--filter", "no-such-layer", "--device", "cpu"], "matches none"),
        (["bench", "spmm", "--anchors", "/no/such/anchors.json", "--device", "cpu", "--limit", "1"], "no such file"),
        (["bench", "spmm", "--warmup", "inf"], "positive finite number"),
        (["bench", "attention", "--rep", "nan"], "positive finite number"),
        (["bench", "spmm", "--dlmc-dir", "/x", "--device", "cpu"], "--dlmc-dir is for --suite dlmc"),
        (["bench", "blocksparse", "--dlmc-dir", "/x"], "unrecognized arguments"),
        (["bench", "spmm", "--device", "cpu", "--out", "/"], "is a directory"),
        (["bench", "attention", "--device", "cpu", "--out", "/"], "is a directory"),
        (["bench", "spmm", "--device", "cpu", "--plot", "x.txt"], "not .txt"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_plot_without_suffix_and_out_in_a_new_folder(tmp_path, capsys):
    """--plot without a suffix writes (and reports) PATH.png; --out and --plot create missing
    folders; a file that cannot be written after the run is an error line and exit status 1, the
    table kept."""
    out_path, plot = tmp_path / "new" / "r.json", tmp_path / "new2" / "p"
    rc = main(["bench", "spmm", "--device", "cpu", "--limit", "1", "-q", "--out", str(out_path), "--plot", str(plot)])
    assert rc == 0 and out_path.exists() and (tmp_path / "new2" / "p.png").exists()
    assert f"wrote {plot}.png" in capsys.readouterr().out
    blocked = tmp_path / "ro"
    blocked.write_text("")  # a file where the JSON's folder should be
    with pytest.raises(SystemExit):
        main(["bench", "spmm", "--device", "cpu", "--limit", "1", "-q", "--out", str(blocked / "r.json")])
    assert "is a file, not a folder" in capsys.readouterr().err


def test_output_error_after_the_run_keeps_the_table(tmp_path, capsys, monkeypatch):
    from sgk.bench import report

    def fail(path, doc):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report, "write_json", fail)
    rc = main(["bench", "spmm", "--device", "cpu", "--limit", "1", "-q", "--out", str(tmp_path / "r.json")])
    cap = capsys.readouterr()
    assert rc == 1 and "geomean speedup" in cap.out and "error: --out" in cap.err and "Permission denied" in cap.err


def test_blocksparse_help_has_no_dlmc_options(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "blocksparse", "--help"])
    out = capsys.readouterr().out
    assert "--dlmc-dir" not in out and "--anchors " not in out and "Suite 'dlmc'" not in out


def test_help(capsys):
    for argv in (["--help"], ["bench", "--help"], ["bench", "spmm", "--help"], ["bench", "sddmm", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "cublas_bf16" in out and "--suite" in out and "sampled_addmm" in out and "sgk bench spmm" in out
    assert set(build_parser()._subparsers._group_actions[0].choices) == {"info", "bench"}


def test_python_dash_m():
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "sgk", "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("sgk ")
