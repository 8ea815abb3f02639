"""The edge runtime under the Jetson's Python: 3.6 with numpy 1.19.5 and OpenCV 4.1.1.

Runs with a bundle trained and exported on the desktop, given by NANOSEG_TEST_BUNDLE (it
needs contract.json, model.onnx, model.contract.json and golden.npz). Imports only numpy,
cv2, onnxruntime, pytest and edge.* (plus the standard library).
"""
import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from nanoseg import golden
from edge.backends import load_backend
from nanoseg.bundle import GOLDEN_NPZ, Bundle
from tests.video_helpers import count_frames

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_CAMERA = os.path.join(ROOT, "edge", "run_camera.py")


@pytest.fixture(scope="module")
def bundle(exported_bundle):
    """The exported bundle (tests/py36/conftest.py): the session's, or NANOSEG_TEST_BUNDLE."""
    if not os.path.isdir(exported_bundle):
        pytest.fail("bundle {} is not a folder".format(exported_bundle))
    return exported_bundle


def run_cli(*argv):
    return subprocess.run([sys.executable, RUN_CAMERA] + [str(a) for a in argv],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300, cwd=ROOT)


def check_masks_and_summary(folder, summary_path, count, num_labels):
    masks = [cv2.imread(p, cv2.IMREAD_UNCHANGED)
             for p in sorted(glob.glob(os.path.join(folder, "*.png")))]
    assert len(masks) == count
    values = set()
    for mask in masks:
        assert mask.dtype == np.uint8 and mask.ndim == 2
        values.update(int(v) for v in np.unique(mask))
    assert values <= set(range(num_labels))
    with open(summary_path) as handle:
        summary = json.load(handle)
    assert summary["frames"] == summary["written"] == count
    assert summary["fps"] > 0 and summary["dropped"] == 0 and summary["error"] is None
    return masks


@pytest.mark.skipif(sys.version_info[:2] != (3, 6),
                    reason="checks the Python 3.6 run (tests/test_python36.py starts it)")
def test_python_is_the_jetsons():
    assert sys.version_info[:2] == (3, 6), sys.version
    assert cv2.__version__.startswith("4.1."), cv2.__version__


def test_headless_run_on_an_image_folder(bundle, nails_dir, tmp_path):
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:5]
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in names:
        os.symlink(os.path.join(nails_dir, "images", name), str(frames / name))
    result = run_cli("--bundle", bundle, "--source", frames, "--headless", "--backend",
                     "onnxruntime", "--save-masks", tmp_path / "masks", "--summary",
                     tmp_path / "s.json")
    assert result.returncode == 0, result.stderr
    masks = check_masks_and_summary(str(tmp_path / "masks"), str(tmp_path / "s.json"),
                                    len(names), Bundle(bundle).contract().num_labels)
    for name, mask in zip(names, masks):
        image = cv2.imread(os.path.join(nails_dir, "images", name))
        assert mask.shape == image.shape[:2]


def test_headless_run_on_a_video(bundle, camvid_dir, tmp_path):
    video = str(tmp_path / "camvid.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (480, 360))
    for path in sorted(glob.glob(os.path.join(camvid_dir, "val", "*.png")))[:8]:
        writer.write(cv2.imread(path))
    writer.release()
    count = count_frames(video)
    assert count == 8
    out = str(tmp_path / "out.mp4")
    result = run_cli("--bundle", bundle, "--source", video, "--headless", "--save-video", out,
                     "--save-masks", tmp_path / "masks", "--summary", tmp_path / "s.json")
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == count
    check_masks_and_summary(str(tmp_path / "masks"), str(tmp_path / "s.json"), count,
                            Bundle(bundle).contract().num_labels)


def test_onnx_matches_the_stored_keras_reference(bundle):
    """ONNX Runtime 1.10 on Python 3.6 sees what Keras saw (golden.npz from the desktop)."""
    data = golden.load_golden(Bundle(bundle).require(GOLDEN_NPZ))
    backend = load_backend(bundle, "onnxruntime")
    probs = np.stack([backend.infer(x) for x in data["inputs"]])
    metrics = golden.compare_probabilities(data["probabilities"], probs, backend.contract)
    assert metrics["max_abs_diff"] <= golden.FP32_MAX_DIFF, metrics
    assert metrics["mask_agreement"] >= golden.FP32_MIN_AGREEMENT, metrics


def _nails_image(nails_dir, name):
    """The nails image a golden entry was made from (by file name or stem), or None."""
    for candidate in (name, name + ".jpg", os.path.basename(name)):
        path = os.path.join(nails_dir, "images", candidate)
        if os.path.isfile(path):
            return path
    return None


def test_bgr_frames_preprocess_to_the_golden_inputs(bundle, nails_dir):
    """OpenCV 4.1.1 BGR frames + the contract == the training pipeline's inputs, bit for bit."""
    from nanoseg.preprocess import IMAGE_READ_FLAGS, preprocess_image
    data = golden.load_golden(Bundle(bundle).require(GOLDEN_NPZ))
    pairs = [(x, _nails_image(nails_dir, n)) for x, n in zip(data["inputs"], data["names"])]
    missing = [n for n, (_, path) in zip(data["names"], pairs) if not path]
    assert not missing, "golden.npz names that are not nails images: {}".format(missing)
    for x, path in pairs:
        frame = cv2.imread(path, IMAGE_READ_FLAGS)
        np.testing.assert_array_equal(preprocess_image(frame, data["contract"], "BGR"), x)


def test_benchmark_runs_under_python36(bundle):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "edge", "benchmark.py"), "--bundle", bundle,
         "--backend", "onnxruntime", "--runs", "3", "--warmup", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300,
        cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "| raw inference, batch 1," in result.stdout and "onnxruntime" in result.stdout
    assert "| OpenCV lower bound 1280x720" in result.stdout
    assert "| render 1280x720 |" in result.stdout and "| encode 1280x720 |" in result.stdout


def test_runtime_threads_survive_a_stalled_camera_and_a_crashing_sink(tmp_path):
    """The stall watchdog's read thread, the render thread's error path and the teardown
    order, under the Jetson's Python and OpenCV: the run ends, the video still plays."""
    from edge.runtime import run_pipeline
    from edge.sinks import VideoSink
    from edge.sources import SourceStream
    from tests.video_helpers import BrokenSink, FakeBackend, StallingCamera, wait_until
    camera = StallingCamera(stall_after=3)
    stream = SourceStream(camera, stall_timeout=0.3, backoff=0.01).start()
    out = str(tmp_path / "out.mp4")
    video = VideoSink(out, 10.0)
    try:
        summary = run_pipeline(stream, FakeBackend(), [video, BrokenSink(fail_at=8)])
    finally:
        camera.unblock.set()
    assert summary["stalls"] == 1 and summary["reconnects"] == 1, summary
    assert summary["end_reason"] == "sink error"
    assert summary["error"].startswith("the BrokenSink failed on frame ")
    assert summary["error"].endswith(": ValueError: unsupported pixel layout (the log has the "
                                     "traceback)")
    assert count_frames(out) == video.frames >= 8
    assert wait_until(lambda: camera.connections[0].released)
    assert not camera.connections[0].released_while_reading
