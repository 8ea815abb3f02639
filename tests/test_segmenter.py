"""The Python API (nanoseg.load -> edge/segmenter.py) on the exported nails bundle and real
nails photos: run_camera's labels, class shares, the overlay, one-line errors, and the
example app examples/coverage_alert.py checked against run_camera's masks."""
import glob
import logging
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import nanoseg
from edge import run_camera
from edge.overlay import bgr_palette
from nanoseg.errors import NanosegError
from nanoseg.preprocess import IMAGE_READ_FLAGS, labels_to_frame, preprocess_image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "coverage_alert.py")
PHOTOS = 8


@pytest.fixture(scope="module")
def bundle(exported_nails_bundle):
    return exported_nails_bundle


@pytest.fixture(scope="module")
def seg(bundle):
    with nanoseg.load(bundle, backend="onnxruntime") as segmenter:
        yield segmenter


@pytest.fixture(scope="module")
def photos(nails_dir, tmp_path_factory):
    """(folder of PHOTOS nails photos, {name: BGR frame as the folder source reads it})."""
    folder = tmp_path_factory.mktemp("photos")
    frames = {}
    for path in sorted(glob.glob(os.path.join(nails_dir, "images", "*.jpg")))[:PHOTOS]:
        os.symlink(path, str(folder / os.path.basename(path)))
        frames[os.path.splitext(os.path.basename(path))[0]] = cv2.imread(path, IMAGE_READ_FLAGS)
    return str(folder), frames


@pytest.fixture(scope="module")
def cli_masks(bundle, photos, tmp_path_factory):
    """{name: mask} that edge/run_camera.py --save-masks writes for the photos."""
    folder = str(tmp_path_factory.mktemp("cli") / "masks")
    args = run_camera.parse_args(["--bundle", bundle, "--source", photos[0], "--headless",
                                  "--backend", "onnxruntime", "--save-masks", folder,
                                  "--log-level", "WARNING"])
    assert run_camera.main(args) == 0
    masks = {}
    for path in glob.glob(os.path.join(folder, "*.png")):
        name = os.path.splitext(os.path.basename(path))[0].split("_", 1)[1]  # <index>_<name>
        masks[name] = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert sorted(masks) == sorted(photos[1])
    return masks


def one_line_error(call, *args, **kwargs):
    with pytest.raises(NanosegError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# -- labels and probabilities -----------------------------------------------------------------
def test_labels_are_what_run_camera_saves_pixel_for_pixel(seg, photos, cli_masks):
    for name, frame in photos[1].items():
        labels = seg.labels(frame)
        assert labels.dtype == np.uint8 and labels.shape == frame.shape[:2]
        assert np.array_equal(labels, cli_masks[name]), name
    shares = [seg.class_shares(mask)["nail"] for mask in cli_masks.values()]
    assert max(shares) > 0.02  # a trained model: nails found, not an all-background map


def test_rgb_frames_give_the_labels_of_the_same_frame_in_bgr(seg, photos):
    frame = next(iter(photos[1].values()))
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    assert np.array_equal(seg.labels(rgb, order="RGB"), seg.labels(frame))
    assert np.array_equal(seg.labels(rgb, order="rgb"), seg.labels(frame))


def test_probabilities_are_the_models_output_at_its_size(seg, photos):
    contract = seg.contract
    frame = next(iter(photos[1].values()))
    probs = seg.probabilities(frame)
    assert probs.dtype == np.float32
    assert probs.shape == (contract.height, contract.width, contract.output_channels)
    assert 0.0 <= probs.min() and probs.max() <= 1.0  # sigmoid
    expected = seg.backend.infer(preprocess_image(frame, contract, "BGR"))
    assert np.array_equal(probs, expected)
    small = (probs[:, :, 0] > contract.threshold).astype(np.uint8)
    assert np.array_equal(seg.small_labels(frame), small)
    assert np.array_equal(seg.labels(frame), labels_to_frame(small, frame.shape))


def test_classes_and_contract_come_from_the_bundle(seg, bundle):
    assert seg.classes == ["background", "nail"]
    with nanoseg.load(bundle, backend="onnxruntime") as other:
        assert seg.contract == other.contract
    assert "onnxruntime" in repr(seg)


# -- class shares -------------------------------------------------------------------------------
def test_class_shares_are_fractions_of_the_scored_pixels(seg, cli_masks):
    mask = next(iter(cli_masks.values()))
    shares = seg.class_shares(mask)
    assert list(shares) == ["background", "nail"]
    assert shares["nail"] == pytest.approx(np.mean(mask == 1))
    assert sum(shares.values()) == pytest.approx(1.0)
    labels = np.zeros((10, 10), np.uint8)
    labels[:, :2] = 1
    labels[:, 5:] = 255  # the contract's ignore id: not scored
    assert seg.class_shares(labels) == {"background": 0.6, "nail": 0.4}
    assert seg.class_shares(np.full((4, 4), 255, np.uint8)) == {"background": 0.0, "nail": 0.0}


def test_labels_of_another_model_are_refused_in_one_line(seg):
    labels = np.zeros((4, 4), np.uint8)
    labels[0, 0] = 7
    assert "[7]" in one_line_error(seg.class_shares, labels)
    assert "uint8 HxW" in one_line_error(seg.class_shares, labels.astype(np.int32))


# -- the overlay ----------------------------------------------------------------------------------
def test_overlay_tints_each_class_with_its_colour_and_leaves_background(seg, photos, cli_masks):
    name = max(cli_masks, key=lambda n: np.count_nonzero(cli_masks[n]))
    frame, labels = photos[1][name], cli_masks[name]
    view = seg.overlay(frame, labels)
    assert view.shape == frame.shape and view.dtype == np.uint8
    below = np.zeros(labels.shape, bool)
    below[120:] = True  # under the legend (its two classes end at y ~ 80)
    background, nail = below & (labels == 0), below & (labels == 1)
    assert np.count_nonzero(nail) > 100
    assert np.array_equal(view[background], frame[background])
    colour = np.zeros_like(frame)
    colour[:] = bgr_palette(seg.contract)[1]
    tinted = cv2.addWeighted(frame, 0.5, colour, 0.5, 0.0)
    assert np.array_equal(view[nail], tinted[nail])
    assert not np.array_equal(view[:120], frame[:120])  # the legend


def test_overlay_takes_model_size_labels_and_rgb_frames_and_draws_statistics_on_request(
        seg, photos):
    frame = next(iter(photos[1].values()))
    view = seg.overlay(frame, seg.labels(frame))
    assert np.array_equal(seg.overlay(frame, seg.small_labels(frame)), view)
    rgb = np.ascontiguousarray(frame[:, :, ::-1])
    assert np.array_equal(seg.overlay(rgb, seg.labels(frame), order="RGB"), view[:, :, ::-1])
    with_fps = seg.overlay(frame, seg.labels(frame), fps=12.5)
    assert not np.array_equal(with_fps[:30, :120], view[:30, :120])  # "12.5 FPS", top left
    assert np.array_equal(with_fps[60:], view[60:])


# -- errors and lifetime ----------------------------------------------------------------------
def test_bad_frames_are_one_line_errors(seg, photos):
    frame = next(iter(photos[1].values()))
    assert "uint8 HxWx3" in one_line_error(seg.labels, frame.astype(np.float32))
    assert "uint8 HxWx3" in one_line_error(seg.labels, frame[:, :, 0])
    assert "uint8 HxWx3" in one_line_error(seg.probabilities, frame.tolist())
    assert "'BGR'" in one_line_error(seg.labels, frame, order="HSV")
    assert "uint8 HxW" in one_line_error(seg.overlay, frame, frame)


def test_a_missing_bundle_or_backend_is_one_line(tmp_path, bundle):
    missing = str(tmp_path / "nowhere")
    assert missing in one_line_error(nanoseg.load, missing)
    assert "--backend must be one of" in one_line_error(nanoseg.load, bundle, backend="fast")


def test_a_closed_segmenter_refuses_work_and_closes_once(bundle, photos):
    frame = next(iter(photos[1].values()))
    with nanoseg.load(bundle, backend="onnxruntime") as seg:
        assert seg.labels(frame).shape == frame.shape[:2]
    assert "closed" in one_line_error(seg.labels, frame)
    assert "closed" in one_line_error(seg.probabilities, frame)
    seg.close()  # twice is fine
    assert "closed" in repr(seg)


def test_nan_or_inf_outputs_are_counted_and_warned_about_once(caplog):
    from edge.segmenter import Segmenter
    from tests.video_helpers import FakeBackend
    seg = Segmenter(FakeBackend(4, 4))
    probs = np.zeros((4, 4, 1), np.float32)
    with caplog.at_level(logging.WARNING, logger="edge.segmenter"):
        seg.to_labels(probs)
        for bad in (np.nan, np.inf, -np.inf):
            probs[1, 2, 0] = bad
            assert seg.to_labels(probs).shape == (4, 4)
    assert seg.labelled == 4 and seg.non_finite_frames == 3
    assert [r.getMessage()[:47] for r in caplog.records] == [
        "the model output of frame 2 has NaN/Inf values,"]


# -- the example app -----------------------------------------------------------------------------
def run_example(*argv, cwd):
    return subprocess.run([sys.executable, EXAMPLE] + [str(a) for a in argv],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300, cwd=cwd)


def test_coverage_alert_reports_the_frames_run_camera_sees_above_the_limit(
        bundle, photos, cli_masks, tmp_path):
    nail = dict((name, 100.0 * np.mean(mask == 1)) for name, mask in cli_masks.items())
    above = float(np.median(list(nail.values())))  # about half the photos alert
    expected = sorted(name for name, percent in nail.items() if percent > above)
    assert 0 < len(expected) < PHOTOS
    alerts = tmp_path / "alerts"
    result = run_example("--bundle", bundle, "--source", photos[0], "--class", "nail",
                         "--above", above, "--backend", "onnxruntime", "--save-alerts", alerts,
                         cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    found = [re.match(r"ALERT frame (\d+) (\S+): nail ([\d.]+)% > ", line) for line in lines[:-1]]
    assert all(found), lines
    assert sorted(m.group(2) for m in found) == expected
    for match in found:
        assert float(match.group(3)) == pytest.approx(nail[match.group(2)], abs=0.006)
    assert lines[-1] == "{} frames, {} with nail above {:g}%".format(PHOTOS, len(expected),
                                                                      above)
    saved = sorted(os.listdir(str(alerts)))
    assert saved == sorted("{:06d}.jpg".format(int(m.group(1))) for m in found)
    assert cv2.imread(str(alerts / saved[0])).shape == photos[1][found[0].group(2)].shape


def test_coverage_alert_names_the_classes_when_one_is_unknown(bundle, photos, tmp_path):
    result = run_example("--bundle", bundle, "--source", photos[0], "--class", "cat",
                         "--backend", "onnxruntime", cwd=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --class 'cat' is not a class of this model: use " \
                                    "one of nail"
