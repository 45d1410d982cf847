"""Test set-up. On a machine without a CUDA GPU the Triton kernels run under the interpreter:
TRITON_INTERPRET must be set before any module that defines kernels is imported, so it is set
here, before sgk is imported. Tests marked ``gpu`` need CUDA and are skipped without it
(run them on the device with ``pytest -m gpu``)."""
import os
import shutil


def _has_nvidia_gpu() -> bool:
    return os.path.exists("/dev/nvidia0") or (shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidiactl"))


if not _has_nvidia_gpu():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m gpu` on the device)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def kernel_device():
    """Where kernel tests run: CUDA when present, else the CPU under the Triton interpreter."""
    if HAS_CUDA:
        return torch.device("cuda")
    if INTERPRET:
        return torch.device("cpu")
    pytest.skip("no CUDA and TRITON_INTERPRET is not set")
