"""The ``gst`` test group: nanoseg's GStreamer pipelines run for real on this machine.

pip's OpenCV has no GStreamer, so these tests run under Debian's /usr/bin/python3 with apt's
python3-opencv (built with GStreamer), python3-gi and the gstreamer1.0-* plugins (``bash
run.sh test`` installs them when it may); tests/test_gst.py runs this folder that way from
the main suite. Under a Python without them (the desktop venv) the folder is not collected:
tests/test_gst.py reports why instead. Everything listens on 127.0.0.1 only.
"""
import hashlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_GST = os.path.join(ROOT, ".cache", "venv-gst")
REQUIREMENTS = os.path.join(ROOT, "tests", "gst", "requirements-gst.txt")


if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def gstreamer_python_problem():
    """Why this Python cannot run the gst group (one phrase), or None when it can."""
    try:
        import gi
        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtspServer  # noqa: F401
        import cv2
        from nanoseg.platform_info import opencv_has_gstreamer
    except (ImportError, ValueError) as exc:
        return "{}: {}".format(type(exc).__name__, exc)
    if not opencv_has_gstreamer():
        return "cv2 {} is built without GStreamer".format(cv2.__version__)
    Gst.init(None)
    return None


PROBLEM = gstreamer_python_problem()
if PROBLEM:  # e.g. the desktop venv: tests/test_gst.py runs these under /usr/bin/python3
    collect_ignore_glob = ["test_*.py"]


def pytest_collection_modifyitems(items):
    """Every test in this folder carries the ``gst`` marker (pytest -m gst / -m 'not gst')."""
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.gst)


def _stamp():
    with open(REQUIREMENTS, "rb") as handle:
        return hashlib.sha256(handle.read() + sys.version.encode()).hexdigest()


def ensure_venv_gst():
    """.cache/venv-gst: this Python + its apt packages + onnxruntime; built once, reused."""
    python = os.path.join(VENV_GST, "bin", "python")
    stamp_path = os.path.join(VENV_GST, ".requirements.sha256")
    if os.path.isfile(python) and os.path.isfile(stamp_path):
        with open(stamp_path) as handle:
            if handle.read().strip() == _stamp():
                return python
    steps = [[sys.executable, "-m", "venv", "--clear", "--system-site-packages", VENV_GST],
             [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "-r", REQUIREMENTS]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            pytest.fail("building {} failed at {}:\n{}".format(
                VENV_GST, " ".join(step), (result.stdout + result.stderr)[-3000:]))
    check = subprocess.run([python, "-c", "import onnxruntime, numpy, cv2, gi"],
                           capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        pytest.fail("{} does not import onnxruntime with apt's numpy/cv2:\n{}".format(
            VENV_GST, check.stderr[-3000:]))
    with open(stamp_path, "w") as handle:
        handle.write(_stamp())
    return python


@pytest.fixture(scope="session")
def edge_python():
    """A Python with apt's GStreamer OpenCV and onnxruntime: runs edge/run_camera.py."""
    return ensure_venv_gst()


@pytest.fixture(scope="session")
def edge_bundle():
    """The bundle the desktop suite trained and exported (tests/test_gst.py passes it)."""
    path = os.environ.get("NANOSEG_TEST_BUNDLE")
    if not path:
        pytest.skip("NANOSEG_TEST_BUNDLE is not set: tests/test_gst.py passes the bundle the "
                    "desktop suite exported (it needs ../shared/data/nails)")
    return path


@pytest.fixture(scope="session")
def nails_images():
    folder = os.path.join(ROOT, "..", "shared", "data", "nails", "images")
    if not os.path.isdir(folder):
        pytest.skip("../shared/data/nails is absent (a fresh clone has no shared data)")
    return os.path.abspath(folder)
