"""The Jetson path (jetson/jetson-files.txt: nanoseg/, edge/, convert/, jetson/) is Python 3.6.

Two checks: vermin's static minimum-version analysis, and the tests in tests/py36 run by a
real CPython 3.6.15 with numpy 1.19.5 (the Jetson pins 1.19.4: same API) and OpenCV 4.1.1 (plus onnxruntime
1.10.0), against a bundle this suite trained and exported with TensorFlow.
"""
import glob
import os
import subprocess
import sys

import pytest

from tests import py36_env

ROOT = py36_env.ROOT


def jetson_path_files():
    """Every Python file that runs on the Jetson: those under jetson/jetson-files.txt's paths
    (what jetson/deploy.sh copies), plus the tests that run under Python 3.6 and the
    TensorRT stand-in they import."""
    files = []
    for entry in py36_env.jetson_paths() + ["tests/py36", "tests/tensorrt_standin.py"]:
        path = os.path.join(ROOT, entry)
        files += glob.glob(os.path.join(path, "**", "*.py"), recursive=True) \
            if os.path.isdir(path) else [path]
    return sorted(f for f in files if f.endswith(".py"))


def test_the_jetson_set_is_the_core_runtime_conversion_jetson_and_example_folders():
    assert py36_env.jetson_paths() == ["nanoseg", "edge", "convert", "jetson", "examples",
                                       "requirements-jetson.txt"]
    assert "train" not in py36_env.jetson_paths()  # Keras stays on the desktop


def test_vermin_says_python36():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.isfile(vermin):
        pytest.skip("vermin is not installed in this environment (requirements-desktop.txt)")
    files = jetson_path_files()
    assert any(f.endswith("contract.py") for f in files)
    result = subprocess.run(
        [vermin, "-q", "--no-tips", "-t=3.6-", "--eval-annotations", "--violations"] + files,
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "Python 3.6 violations:\n" + result.stdout + result.stderr


def test_jetson_path_imports_no_desktop_libraries():
    """No TensorFlow / albumentations / segmentation_models import at module level."""
    heavy = ("tensorflow", "keras", "albumentations", "segmentation_models", "onnx ", "tf2onnx")
    offenders = []
    for path in jetson_path_files():
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                if line.startswith(("import ", "from ")) and any(
                        line.split()[1].startswith(h.strip()) for h in heavy):
                    offenders.append("{}:{}: {}".format(os.path.relpath(path, ROOT), number,
                                                        line.strip()))
    assert not offenders, "\n".join(offenders)


def test_jetson_tests_pass_under_real_python36(python36, exported_nails_bundle):
    """tests/py36 under CPython 3.6.15 + numpy 1.19.5 + OpenCV 4.1.1 + onnxruntime 1.10.0.

    The bundle was trained and exported by this (desktop) session; the 3.6 side only reads
    it, as the Jetson does.
    """
    env = dict(os.environ, NANOSEG_TEST_BUNDLE=exported_nails_bundle, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [python36, "-m", "pytest", "tests/py36", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, "Python 3.6 run failed:\n" + output[-6000:]
    versions = subprocess.run(
        [python36, "-c", "import sys, numpy, cv2, onnxruntime; print(sys.version_info[:2], "
         "numpy.__version__, cv2.__version__, onnxruntime.__version__)"],
        capture_output=True, text=True, timeout=120).stdout
    assert versions.split()[0:2] == ["(3,", "6)"] and "1.19.5" in versions \
        and "4.1.1" in versions, versions
    assert " passed" in output and "NANOSEG_TEST_BUNDLE is not set" not in output, output[-3000:]
    # Under 3.6 with the bundle every test must run: a silent skip would hide a lost parity
    # check. Only the "no TensorRT here" stand-in test may skip (on a machine that has it).
    skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    assert all("tensorrt is installed here" in line for line in skipped), skipped
