"""Shared test fixtures: capabilities computed once, real data located once.

Tests that need ../shared/data skip with a reason when it is absent (a fresh clone);
CI always has it. TensorRT tests skip unless tensorrt and a GPU are present.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from train import keras_env  # noqa: E402

keras_env.prepare()
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")  # tests are CPU-only and deterministic

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
