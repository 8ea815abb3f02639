"""A nested image folder as --source: walked in sorted relative-path order, and the masks
saved under the same relative paths (also under the Jetson's Python 3.6)."""
import glob
import os

import cv2
import numpy as np

from edge import sources
from edge.sinks import MaskSink, Result, mask_filename
from tests.video_helpers import drain

# relative path in the nested source folder <- index into camvid-mini's sorted val frames
LAYOUT = (("b/late/frame", 0), ("a/z", 1), ("b/early", 2), ("a/sub/one", 3), ("top", 4))


def _nested_folder(camvid_dir, root):
    """Real CamVid frames as PNG copies at nested paths (plus a hidden file to skip)."""
    frames = sorted(glob.glob(os.path.join(camvid_dir, "val", "*.png")))
    expected = {}
    for relative, index in LAYOUT:
        path = os.path.join(root, *relative.split("/")) + ".png"
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        image = cv2.imread(frames[index], cv2.IMREAD_COLOR)
        assert cv2.imwrite(path, image)
        expected[relative] = image
    with open(os.path.join(root, "a", ".hidden.png"), "wb") as handle:
        handle.write(b"not an image")
    return expected


def test_nested_folder_is_walked_in_relative_path_order(camvid_dir, tmp_path):
    root = str(tmp_path / "frames")
    expected = _nested_folder(camvid_dir, root)
    stream = sources.open_source(root)
    assert "5 images" in stream.description
    frames = drain(stream, len(LAYOUT))
    assert [f.name for f in frames] == ["a/sub/one", "a/z", "b/early", "b/late/frame", "top"]
    for frame in frames:
        np.testing.assert_array_equal(frame.image, expected[frame.name])


def test_saved_masks_keep_the_relative_path(camvid_dir, tmp_path):
    root = str(tmp_path / "frames")
    _nested_folder(camvid_dir, root)
    frames = drain(sources.open_source(root), len(LAYOUT))
    folder = str(tmp_path / "masks")
    sink = MaskSink(folder)
    for frame in frames:
        labels = (frame.image[:, :, 0] > 100).astype(np.uint8)
        sink.write(Result(frame.index, frame.name, frame.image, labels))
    sink.close()
    written = sorted(os.path.relpath(p, folder).replace(os.sep, "/") for p in
                     glob.glob(os.path.join(folder, "**", "*.png"), recursive=True))
    assert written == ["000004_top.png", "a/000001_z.png", "a/sub/000000_one.png",
                       "b/000002_early.png", "b/late/000003_frame.png"]
    saved = cv2.imread(os.path.join(folder, "b", "late", "000003_frame.png"),
                       cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved, (frames[3].image[:, :, 0] > 100).astype(np.uint8))


def test_mask_names_never_leave_the_mask_folder():
    assert mask_filename(7, "x") == "000007_x.png"
    assert mask_filename(7, "../../etc/x") == os.path.join("etc", "000007_x.png")
    assert mask_filename(7, "/abs/./x") == os.path.join("abs", "000007_x.png")
    assert mask_filename(7, "a\\b") == os.path.join("a", "000007_b.png")


def test_a_truncated_image_in_a_folder_is_skipped_named_and_counted(camvid_dir, tmp_path,
                                                                    caplog):
    from edge.run_summary import format_summary
    from edge.runtime import run_pipeline
    from tests.video_helpers import FakeBackend
    root = str(tmp_path / "frames")
    expected = _nested_folder(camvid_dir, root)
    cut = _cut_jpeg(expected["top"], os.path.join(root, "b", "cut.jpg"))
    summary = run_pipeline(sources.open_source(root), FakeBackend())
    assert summary["frames"] == len(LAYOUT) and summary["error"] is None
    assert summary["skipped_files"] == 1
    assert any("skipping image {}: it is truncated".format(cut) in r.getMessage()
               for r in caplog.records)
    assert any("1 truncated image files skipped" in line for line in format_summary(summary))


def test_a_truncated_single_image_source_is_an_error_naming_it(camvid_dir, tmp_path):
    from nanoseg.errors import NanosegError
    frame = cv2.imread(sorted(glob.glob(os.path.join(camvid_dir, "val", "*.png")))[0])
    cut = _cut_jpeg(frame, str(tmp_path / "cut.jpg"))
    stream = sources.open_source(cut)
    assert drain(stream, 5) == []
    assert stream.error.startswith("image {} is truncated".format(cut))


def _cut_jpeg(image, path):
    """``image`` as a JPEG cut in half: OpenCV decodes it, grey below the cut."""
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    with open(path, "wb") as handle:
        handle.write(data.tobytes()[:len(data) // 2])
    assert cv2.imread(path) is not None
    return path
