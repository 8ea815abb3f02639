"""The Python API under the Jetson's Python (3.6, numpy 1.19, OpenCV 4.1.1, onnxruntime 1.10):
``nanoseg.load(bundle).labels(frame)`` is, pixel for pixel, what edge/run_camera.py
--save-masks writes for the same frames (photos and a video), with the ONNX bundle from
NANOSEG_TEST_BUNDLE (tests/py36/conftest.py)."""
import glob
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import nanoseg
from nanoseg.preprocess import IMAGE_READ_FLAGS
from tests.video_helpers import decode_frames

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_CAMERA = os.path.join(ROOT, "edge", "run_camera.py")


def saved_masks(bundle, source, folder):
    """[(frame name, mask)] in frame order from edge/run_camera.py --save-masks
    (``<index>_<name>.png``)."""
    result = subprocess.run(
        [sys.executable, RUN_CAMERA, "--bundle", bundle, "--source", source, "--headless",
         "--backend", "onnxruntime", "--save-masks", folder],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300,
        cwd=ROOT)
    assert result.returncode == 0, result.stderr
    masks = []
    for path in glob.glob(os.path.join(folder, "*.png")):
        index, name = os.path.splitext(os.path.basename(path))[0].split("_", 1)
        masks.append((int(index), name, cv2.imread(path, cv2.IMREAD_UNCHANGED)))
    return [(name, mask) for _, name, mask in sorted(masks, key=lambda entry: entry[0])]


@pytest.fixture(scope="module")
def seg(exported_bundle):
    with nanoseg.load(exported_bundle, backend="onnxruntime") as segmenter:
        yield segmenter


def test_labels_of_photos_equal_run_cameras_masks(seg, exported_bundle, nails_dir, tmp_path):
    paths = sorted(glob.glob(os.path.join(nails_dir, "images", "*.jpg")))[:6]
    folder = tmp_path / "photos"
    folder.mkdir()
    for path in paths:
        os.symlink(path, str(folder / os.path.basename(path)))
    masks = dict(saved_masks(exported_bundle, str(folder), str(tmp_path / "masks")))
    assert len(masks) == len(paths)
    for path in paths:
        labels = seg.labels(cv2.imread(path, IMAGE_READ_FLAGS))
        name = os.path.splitext(os.path.basename(path))[0]
        assert labels.dtype == np.uint8
        assert np.array_equal(labels, masks[name]), name
    assert any(seg.class_shares(mask)["nail"] > 0.02 for mask in masks.values())


def test_labels_of_video_frames_equal_run_cameras_masks(seg, exported_bundle, nails_dir,
                                                        tmp_path):
    video = str(tmp_path / "nails.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for path in sorted(glob.glob(os.path.join(nails_dir, "images", "*.jpg")))[:6]:
        writer.write(cv2.resize(cv2.imread(path, IMAGE_READ_FLAGS), (320, 240)))
    writer.release()
    frames = decode_frames(video)
    assert len(frames) == 6
    masks = saved_masks(exported_bundle, video, str(tmp_path / "masks"))
    assert len(masks) == len(frames)
    for index, (frame, (_, mask)) in enumerate(zip(frames, masks)):
        assert np.array_equal(seg.labels(frame), mask), index
