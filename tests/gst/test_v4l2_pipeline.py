"""The USB camera's caps chains (edge.gst_capture.v4l2_pipeline), run for real with stand-ins.

There is no camera here: videotestsrc plays it, encoded to the format the caps after v4l2src
ask for (jpegenc for MJPEG, x264enc for H.264; raw YUY2 as it is), and the Jetson's
decoders become desktop ones (tests/gst/gst_helpers.v4l2_standin). Every caps filter is the
product's own, so a wrong format, size or rate fails to negotiate and OpenCV does not open.
"""
import pytest

from edge import gst_capture
from tests.gst.gst_helpers import psnr, requires_cv2_gstreamer, v4l2_standin
from tests.gst.test_csi_pipeline import read_one_frame

pytestmark = pytest.mark.gst

WIDTH, HEIGHT, FPS = 320, 240, 30


def test_the_standin_keeps_every_caps_filter_and_maps_the_jetson_decoders():
    product = gst_capture.v4l2_pipeline("/dev/video0", "mjpeg", WIDTH, HEIGHT, FPS, jetson=True)
    standin = v4l2_standin(product)
    assert standin.startswith("videotestsrc is-live=true num-buffers=3 pattern=colors ! "
                              "jpegenc quality=95 ! image/jpeg, width=(int)320, "
                              "height=(int)240, framerate=(fraction)30/1 ! jpegparse ! "
                              "jpegdec ! videoconvert ! video/x-raw, format=(string)BGRx")
    with pytest.raises(ValueError, match="no stand-in for"):
        v4l2_standin(product.replace("jpegparse", "nvjpegdec"))


@requires_cv2_gstreamer
@pytest.mark.parametrize("jetson", [False, True])
def test_every_camera_format_decodes_to_the_same_picture_at_the_asked_size(jetson):
    frames = {}
    for codec in ("yuyv", "mjpeg", "h264"):
        pipeline = gst_capture.v4l2_pipeline("/dev/video0", codec, WIDTH, HEIGHT, FPS, jetson)
        frame = read_one_frame(v4l2_standin(pipeline, pattern="smpte"))
        assert frame is not None, "{}: the caps chain did not negotiate".format(codec)
        assert frame.shape == (HEIGHT, WIDTH, 3), codec
        frames[codec] = frame
    for codec in ("mjpeg", "h264"):  # lossy (and JPEG's chroma is 4:2:0), the same picture
        assert psnr(frames[codec], frames["yuyv"]) >= 20.0, codec
    other = read_one_frame(v4l2_standin(gst_capture.v4l2_pipeline(
        "/dev/video0", "yuyv", WIDTH, HEIGHT, FPS), pattern="ball"))
    assert psnr(other, frames["yuyv"]) < 12.0  # another picture is far below that


@requires_cv2_gstreamer
@pytest.mark.parametrize("codec", ["yuyv", "mjpeg", "h264"])
def test_a_size_the_camera_cannot_give_does_not_open(codec):
    """The check above can fail: a camera giving only 640x480 never negotiates 320x240."""
    standin = v4l2_standin(gst_capture.v4l2_pipeline("/dev/video0", codec, WIDTH, HEIGHT, FPS))
    only_vga = standin.replace("pattern=colors", "pattern=colors ! video/x-raw, width=640, "
                               "height=480", 1)
    assert read_one_frame(only_vga) is None
