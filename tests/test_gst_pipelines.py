"""edge.gst's pipeline strings: the CSI and RTSP capture pipelines, the H.264 writers.

The strings run for real in tests/gst (tests/test_gst.py); here they are checked as text.
"""
import pytest

from edge import gst, gst_capture
from edge.sources import SourceURI
from nanoseg.errors import NanosegError


def rtsp_pipeline_of(uri, **options):
    """gst_capture.rtsp_pipeline for ``uri`` as the RTSP source calls it: credentials apart."""
    parsed = SourceURI(uri)
    return gst_capture.rtsp_pipeline(parsed.location, user=parsed.user, password=parsed.password,
                             **options)


def test_csi_pipeline_is_what_the_jetson_needs():
    text = gst_capture.csi_pipeline(sensor_id=1, width=1920, height=1080, fps=21, flip=2)
    assert text == (
        "nvarguscamerasrc sensor-id=1 ! "
        "video/x-raw(memory:NVMM), width=(int)1920, height=(int)1080, "
        "framerate=(fraction)21/1, format=(string)NV12 ! "
        "nvvidconv flip-method=2 ! "
        "video/x-raw, width=(int)1920, height=(int)1080, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1")
    with pytest.raises(NanosegError, match="--flip must be an nvvidconv flip-method 0..7"):
        gst_capture.csi_pipeline(flip=9)


@pytest.mark.parametrize("flip, transposed", [(0, False), (1, True), (2, False), (3, True),
                                              (4, False), (5, True), (6, False), (7, True)])
def test_csi_rotations_and_diagonal_flips_swap_the_output_size(flip, transposed):
    """nvvidconv flip-method 1/3 rotate by 90 and 5/7 transpose: its output is HxW then."""
    text = gst_capture.csi_pipeline(width=1280, height=720, fps=30, flip=flip)
    sensor_caps = ("video/x-raw(memory:NVMM), width=(int)1280, height=(int)720, "
                   "framerate=(fraction)30/1")
    assert sensor_caps in text  # the sensor mode never changes
    out = "width=(int)720, height=(int)1280" if transposed else \
        "width=(int)1280, height=(int)720"
    assert "nvvidconv flip-method={} ! video/x-raw, {}, format=(string)BGRx".format(
        flip, out) in text


def test_rtsp_pipeline_honours_latency_and_uses_the_hardware_decoder_on_jetson():
    jetson = gst_capture.rtsp_pipeline("rtsp://cam/1", latency=50, jetson=True)
    assert jetson.startswith('rtspsrc location="rtsp://cam/1" latency=50 ! rtph264depay')
    assert "nvv4l2decoder" in jetson and jetson.endswith("appsink drop=true max-buffers=1")
    assert "avdec_h264" in gst_capture.rtsp_pipeline("rtsp://cam/1", jetson=False)
    h265 = gst_capture.rtsp_pipeline("rtsp://cam/1", jetson=False, codec="h265")
    assert "! rtph265depay ! h265parse ! avdec_h265 !" in h265 and "264" not in h265
    assert "rtph265depay ! h265parse ! nvv4l2decoder" in gst_capture.rtsp_pipeline(
        "rtsp://cam/1", jetson=True, codec="h265")
    with pytest.raises(NanosegError, match="--rtsp-codec must be one of h264 h265"):
        gst_capture.rtsp_pipeline("rtsp://cam/1", codec="mjpeg")


def test_rtsp_credentials_with_spaces_and_quotes_stay_inside_quoted_values():
    """user-id/user-pw are quoted GStreamer values: a password cannot end the element."""
    uri = "rtsp://ad%20min:p%22a%5Css%20w!rd%40x@10.0.0.5:554/live?ch=1"
    text = rtsp_pipeline_of(uri, latency=0)
    assert text.startswith('rtspsrc location="rtsp://10.0.0.5:554/live?ch=1" latency=0 '
                           'user-id="ad min" user-pw="p\\"a\\\\ss w!rd@x" ! rtph264depay')
    raw = rtsp_pipeline_of('rtsp://cam:pa ss"word@host/x')
    assert 'location="rtsp://host/x"' in raw and 'user-pw="pa ss\\"word"' in raw


def test_each_encoder_chain_feeds_h264parse():
    nvidia = gst.encoder_chain("nvv4l2h264enc", 2000, 15)
    assert "nvvidconv ! video/x-raw(memory:NVMM)" in nvidia
    assert "nvv4l2h264enc bitrate=2000000 iframeinterval=15" in nvidia
    x264 = gst.encoder_chain("x264enc", 2000, 15)
    assert "x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=15" in x264
    assert "openh264enc bitrate=2000000 gop-size=15" in gst.encoder_chain("openh264enc", 2000,
                                                                          15)
    for chain in (nvidia, x264):
        assert chain.endswith("! h264parse config-interval=-1")
    with pytest.raises(NanosegError, match="unknown H.264 encoder"):
        gst.encoder_chain("vp8enc")


def test_file_and_rtp_pipelines():
    mp4 = gst.file_pipeline('/tmp/my "odd" dir/x.mp4', "x264enc", ".mp4")
    assert mp4.startswith("appsrc ! videoconvert") and "! mp4mux ! filesink location=" in mp4
    assert mp4.endswith('location="/tmp/my \\"odd\\" dir/x.mp4"')
    assert "matroskamux" in gst.file_pipeline("x.mkv", "x264enc", ".mkv")
    with pytest.raises(NanosegError, match=".mp4 or .mkv"):
        gst.file_pipeline("x.avi", "x264enc", ".avi")
    rtp = gst.rtp_pipeline("10.0.0.7", 5000, "x264enc")
    assert 'rtph264pay config-interval=1 pt=96 ! udpsink host="10.0.0.7" port=5000' in rtp
    media = gst.rtsp_media_launch(6000)
    assert media.startswith("( udpsrc") and "port=6000" in media and "name=pay0" in media


def test_a_csi_sensor_mode_is_captured_whole_and_scaled_by_nvvidconv():
    mode = gst_capture.parse_sensor_mode("3264x2464@21")
    assert mode == (3264, 2464, 21)
    text = gst_capture.csi_pipeline(0, 1280, 960, 30, flip=3, sensor_mode=mode)
    assert "video/x-raw(memory:NVMM), width=(int)3264, height=(int)2464, " \
           "framerate=(fraction)21/1, format=(string)NV12 ! nvvidconv flip-method=3 ! " \
           "video/x-raw, width=(int)960, height=(int)1280, format=(string)BGRx" in text
    rate_from_fps = gst_capture.csi_pipeline(0, 640, 480, 30,
                                             sensor_mode=gst_capture.parse_sensor_mode(
                                                 "1640x1232"))
    assert "width=(int)1640, height=(int)1232, framerate=(fraction)30/1" in rate_from_fps
    for bad in ("3264", "3264x", "0x10", "axb@3", "1640x1232@x"):
        with pytest.raises(NanosegError, match="--sensor-mode must be WIDTHxHEIGHT"):
            gst_capture.parse_sensor_mode(bad)


@pytest.mark.parametrize("transport, protocols", [("auto", None), ("tcp", "tcp"),
                                                  ("udp", "udp")])
def test_rtsp_transport_sets_rtspsrc_protocols(transport, protocols):
    text = gst_capture.rtsp_pipeline("rtsp://cam/1", latency=50, transport=transport)
    source = text.split(" ! ")[0]
    assert source.startswith('rtspsrc location="rtsp://cam/1" latency=50')
    assert ("protocols=" in source) is (protocols is not None)
    if protocols:
        assert source.endswith(" protocols={}".format(protocols))
    with pytest.raises(NanosegError, match="--rtsp-transport must be one of auto tcp udp"):
        gst_capture.rtsp_pipeline("rtsp://cam/1", transport="http")


@pytest.mark.parametrize("codec, jetson, chain", [
    ("yuyv", False, "video/x-raw, format=(string)YUY2, width=(int)1280, height=(int)720, "
                    "framerate=(fraction)30/1 ! videoconvert !"),
    ("yuyv", True, "video/x-raw, format=(string)YUY2, width=(int)1280, height=(int)720, "
                   "framerate=(fraction)30/1 ! videoconvert !"),
    ("mjpeg", False, "image/jpeg, width=(int)1280, height=(int)720, framerate=(fraction)30/1 "
                     "! jpegdec ! videoconvert !"),
    ("mjpeg", True, "image/jpeg, width=(int)1280, height=(int)720, framerate=(fraction)30/1 ! "
                    "jpegparse ! nvv4l2decoder mjpeg=1 ! nvvidconv ! video/x-raw, "
                    "format=(string)BGRx ! videoconvert !"),
    ("h264", False, "video/x-h264, stream-format=(string)byte-stream, width=(int)1280, "
                    "height=(int)720, framerate=(fraction)30/1 ! h264parse ! avdec_h264 ! "
                    "videoconvert !"),
    ("h264", True, "framerate=(fraction)30/1 ! h264parse ! nvv4l2decoder ! nvvidconv ! "
                   "video/x-raw, format=(string)BGRx ! videoconvert !")])
def test_each_usb_camera_format_has_its_caps_and_decoder(codec, jetson, chain):
    text = gst_capture.v4l2_pipeline("/dev/video1", codec, 1280, 720, 30, jetson=jetson)
    assert text.startswith('v4l2src device="/dev/video1" do-timestamp=true ! ')
    assert chain in text
    assert text.endswith("video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1")
    with pytest.raises(NanosegError, match="--input-codec must be one of auto mjpeg yuyv h264"):
        gst_capture.v4l2_pipeline("/dev/video1", "nv12", 1280, 720, 30)


def test_rtp_input_gives_udpsrc_the_caps_of_nanosegs_own_rtp_output():
    text = gst_capture.rtp_input_pipeline(5004, latency=80)
    assert text.startswith("udpsrc port=5004 buffer-size=2097152 caps=")
    assert gst.rtp_caps("h264") == gst.RTP_CAPS  # what --output rtp:// sends
    assert "! rtpjitterbuffer latency=80 ! rtph264depay ! h264parse ! avdec_h264 !" in text
    h265 = gst_capture.rtp_input_pipeline(5004, "239.0.0.9", codec="h265", jetson=True)
    assert 'address="239.0.0.9"' in h265 and "encoding-name=(string)H265" in h265
    assert "rtph265depay ! h265parse ! nvv4l2decoder ! nvvidconv" in h265
