"""The CSI pipeline's caps chain, run for real with desktop stand-ins for the Jetson elements.

edge.gst_capture.csi_pipeline builds ``nvarguscamerasrc ! NVMM NV12 caps ! nvvidconv
flip-method=N ! BGRx caps ! videoconvert ! BGR ! appsink``. Here videotestsrc plays the
camera and videoflip the nvvidconv rotation (tests/gst/gst_helpers.csi_standin); every caps
filter stays the product's own, so a wrong output size for a flip method fails to negotiate
and cv2.VideoCapture does not open.
"""
import cv2
import numpy as np
import pytest

from edge import gst_capture
from tests.gst.gst_helpers import csi_standin, psnr, requires_cv2_gstreamer

pytestmark = pytest.mark.gst

WIDTH, HEIGHT = 160, 120
# What each nvvidconv flip-method does to an HxW image: the reference for the stand-in.
NUMPY_FLIPS = {
    0: lambda a: a,
    1: lambda a: np.rot90(a, 1),                   # counterclockwise 90
    2: lambda a: np.rot90(a, 2),                   # 180
    3: lambda a: np.rot90(a, -1),                  # clockwise 90
    4: lambda a: a[:, ::-1],                       # horizontal flip
    5: lambda a: a[::-1, ::-1].swapaxes(0, 1),     # across the upper-right diagonal
    6: lambda a: a[::-1],                          # vertical flip
    7: lambda a: a.swapaxes(0, 1),                 # across the upper-left diagonal
}


def read_one_frame(pipeline):
    """The first BGR frame of ``pipeline`` through OpenCV's GStreamer backend (None: no open)."""
    import cv2
    capture = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    try:
        if not capture.isOpened():
            return None
        ok, frame = capture.read()
        return frame if ok else None
    finally:
        capture.release()


def test_standin_translation_keeps_every_caps_filter_and_maps_each_flip_method():
    product = gst_capture.csi_pipeline(2, 640, 480, 15, flip=5)
    standin = csi_standin(product, num_buffers=4)
    assert standin.startswith("videotestsrc is-live=true num-buffers=4 ")
    assert "video/x-raw, width=(int)640, height=(int)480, framerate=(fraction)15/1, " \
           "format=(string)NV12 !" in standin
    assert "videoflip video-direction=ur-ll ! videoconvert ! video/x-raw, width=(int)480, " \
           "height=(int)640, format=(string)BGRx" in standin
    assert "NVMM" not in standin and "nv" not in standin.replace("videoconvert", "")
    with pytest.raises(ValueError, match="no stand-in for"):
        csi_standin(product.replace("nvvidconv", "nvjpegdec"))


@requires_cv2_gstreamer
def test_every_flip_method_gives_the_size_and_orientation_nvvidconv_would():
    upright = read_one_frame(csi_standin(gst_capture.csi_pipeline(0, WIDTH, HEIGHT, 30, flip=0)))
    assert upright is not None and upright.shape == (HEIGHT, WIDTH, 3)
    for flip in gst_capture.FLIP_METHODS:
        frame = read_one_frame(csi_standin(gst_capture.csi_pipeline(0, WIDTH, HEIGHT, 30, flip)))
        assert frame is not None, "flip-method={}: the caps chain did not negotiate".format(flip)
        expected = (WIDTH, HEIGHT) if flip in gst_capture.TRANSPOSING_FLIPS else (HEIGHT, WIDTH)
        assert frame.shape == expected + (3,), flip
        scores = {m: psnr(frame, np.ascontiguousarray(f(upright)))
                  for m, f in NUMPY_FLIPS.items() if f(upright).shape == frame.shape}
        assert max(scores, key=scores.get) == flip, (flip, scores)
        assert scores[flip] >= 30.0, (flip, scores)


@requires_cv2_gstreamer
def test_a_caps_chain_with_the_wrong_output_size_does_not_open():
    """The check above can fail: output caps that do not match the rotation never negotiate."""
    transposed = gst_capture.csi_pipeline(0, WIDTH, HEIGHT, 30, flip=1)
    wrong = transposed.replace("flip-method=1", "flip-method=0")
    assert read_one_frame(csi_standin(wrong)) is None


@requires_cv2_gstreamer
@pytest.mark.parametrize("flip", [0, 3])
def test_a_full_sensor_mode_is_scaled_to_the_asked_size_keeping_the_whole_picture(flip):
    """--sensor-mode 640x480 with --width 160 --height 120: the frame is the whole sensor
    picture scaled down (not a crop), flipped as asked."""
    mode = gst_capture.parse_sensor_mode("640x480@30")
    whole = read_one_frame(csi_standin(gst_capture.csi_pipeline(0, 640, 480, 30),
                                       pattern="smpte100"))
    scaled = read_one_frame(csi_standin(gst_capture.csi_pipeline(
        0, WIDTH, HEIGHT, 30, flip, sensor_mode=mode), pattern="smpte100", scale=True))
    assert whole is not None and scaled is not None
    expected = (WIDTH, HEIGHT) if flip in gst_capture.TRANSPOSING_FLIPS else (HEIGHT, WIDTH)
    assert scaled.shape == expected + (3,)
    reference = NUMPY_FLIPS[flip](cv2.resize(whole, (WIDTH, HEIGHT),
                                             interpolation=cv2.INTER_AREA))
    assert psnr(scaled, np.ascontiguousarray(reference)) >= 20.0  # NV12 chroma, two scalers
    cropped = NUMPY_FLIPS[flip](whole[:HEIGHT, :WIDTH])
    assert psnr(scaled, np.ascontiguousarray(cropped)) < 10.0
