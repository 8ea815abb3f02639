"""Shared test fixtures: capabilities computed once, real data located once.

Tests that need ../shared/data skip with a reason when it is absent (a fresh clone);
CI always has it. TensorRT tests skip unless tensorrt and a GPU are present.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from train import keras_env  # noqa: E402

keras_env.prepare()
# Tests in this process are CPU-only and deterministic (TensorFlow must not take the GPU).
# CUDA reads the variable once, when it initialises, so it hides the GPU from TensorRT and
# pycuda in this process too: tests/test_tensorrt.py runs them in subprocesses given
# GPU_ENV, the environment as it was before this line.
GPU_ENV = dict(os.environ)
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

import pytest  # noqa: E402

SHARED_DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
NAILS = os.path.join(SHARED_DATA, "nails")
CAMVID = os.path.join(SHARED_DATA, "camvid-mini")


def _importable(name):
    try:
        __import__(name)
        return True
    except Exception:  # ImportError, or a broken CUDA install raising something else
        return False


HAS_TRT = _importable("tensorrt") and _importable("pycuda.driver")
HAS_NAILS = os.path.isdir(os.path.join(NAILS, "images"))
HAS_CAMVID = os.path.isdir(os.path.join(CAMVID, "train"))

requires_trt = pytest.mark.skipif(not HAS_TRT, reason="tensorrt + pycuda not installed "
                                  "(they come with JetPack on the Jetson; no GPU here)")
requires_nails = pytest.mark.skipif(not HAS_NAILS, reason="../shared/data/nails is absent "
                                    "(a fresh clone has no shared data; CI has it)")
requires_camvid = pytest.mark.skipif(not HAS_CAMVID, reason="../shared/data/camvid-mini is "
                                     "absent (a fresh clone has no shared data; CI has it)")


@pytest.fixture(scope="session")
def nails_dir():
    if not HAS_NAILS:
        pytest.skip("../shared/data/nails is absent")
    return NAILS


@pytest.fixture(scope="session")
def camvid_dir():
    if not HAS_CAMVID:
        pytest.skip("../shared/data/camvid-mini is absent")
    return CAMVID


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder on a read-only tmpfs mount: writes fail even for root, which
    permission bits do not stop. Skips where mounting is not permitted."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    try:
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs",
                                str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
    except OSError as exc:  # no mount command
        pytest.skip("cannot mount a read-only tmpfs here: {}".format(exc))
    if mount.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here: {}".format(mount.stdout.strip()))
    try:
        yield str(folder)
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def nearly_full_folder(tmp_path):
    """An empty folder on a 2 MB tmpfs with only 64 KiB left: a real full disk (ENOSPC) for
    the writers, which root meets too. Skips where mounting is not permitted."""
    mount_point = tmp_path / "full-disk"
    mount_point.mkdir()
    try:
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                str(mount_point)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True)
    except OSError as exc:  # no mount command
        pytest.skip("cannot mount a tmpfs here: {}".format(exc))
    if mount.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: {}".format(mount.stdout.strip()))
    try:
        with open(str(mount_point / ".filler"), "wb") as handle:
            handle.write(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
        folder = mount_point / "out"
        folder.mkdir()
        yield str(folder)
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


# -- shared trained bundles: trained once per session, used by convert/edge/validate tests --
# Small on purpose (mobilenetv2 without ImageNet weights, 96-128 px) but really trained: FP16
# parity, mask parity and mIoU floors mean nothing on a model that predicts background
# everywhere. BatchNorm momentum 0.9 lets the running statistics settle within these ~140
# steps (measured: val nail IoU 0.33 at 14 epochs, 0.00 at 4 epochs or with momentum 0.99).
NAILS_TRAINING = dict(classes=["nail"], size=(128, 128), epochs=14, batch=4,
                      extra_args=("--bn-momentum", "0.9"))
CAMVID_TRAINING = dict(classes=["car", "pedestrian", "road"], size=(96, 128), epochs=6,
                       batch=4, extra_args=("--bn-momentum", "0.9"))


@pytest.fixture(scope="session")
def trained_nails_bundle(tmp_path_factory, nails_dir):
    """A sigmoid (nail vs background) bundle trained on ../shared/data/nails."""
    from tests.train_helpers import train_small_bundle
    out = tmp_path_factory.mktemp("shared-nails") / "bundle"
    return train_small_bundle(out, nails_dir, "flat", **NAILS_TRAINING)


@pytest.fixture(scope="session")
def trained_camvid_bundle(tmp_path_factory, camvid_dir):
    """A softmax bundle (car, pedestrian, road + background) trained on camvid-mini."""
    from tests.train_helpers import train_small_bundle
    out = tmp_path_factory.mktemp("shared-camvid") / "bundle"
    return train_small_bundle(out, camvid_dir, "camvid", **CAMVID_TRAINING)


def _exported_copy(bundle, tmp_path_factory, name, extra_args=()):
    """Copy a trained bundle and run convert/export_onnx.py on the copy."""
    import shutil
    from convert import export_onnx
    out = str(tmp_path_factory.mktemp(name) / "bundle")
    shutil.copytree(bundle, out)
    status = export_onnx.main(export_onnx.parse_args(["--bundle", out] + list(extra_args)))
    assert status in (0, None), "export_onnx returned {}".format(status)
    return out


@pytest.fixture(scope="session")
def exported_nails_bundle(trained_nails_bundle, tmp_path_factory):
    """The nails bundle after export: model.onnx (NHWC), FP16 copy, golden.npz, parity.json."""
    return _exported_copy(trained_nails_bundle, tmp_path_factory, "exported-nails")


@pytest.fixture(scope="session")
def exported_camvid_bundle(trained_camvid_bundle, tmp_path_factory):
    """The camvid bundle exported with an NCHW input (the layout TensorRT prefers)."""
    return _exported_copy(trained_camvid_bundle, tmp_path_factory, "exported-camvid",
                          ["--nchw"])


@pytest.fixture(scope="session")
def python36():
    """The python of a Python 3.6 venv with JetPack 4.6's numpy/OpenCV (built once)."""
    from tests import py36_env
    interpreter = py36_env.find_python36()
    if interpreter is None:
        pytest.skip("no CPython 3.6 on this machine (the machine image carries 3.6.15 via "
                    "pyenv; set NANOSEG_PYTHON36 to use another)")
    return py36_env.ensure_venv36(interpreter)
