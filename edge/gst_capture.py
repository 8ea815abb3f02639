"""Every capture pipeline nanoseg hands to ``cv2.VideoCapture(..., CAP_GSTREAMER)``.

CSI (nvarguscamerasrc), USB/V4L2 (v4l2src in the camera's raw, MJPEG or H.264 format), RTSP
(rtspsrc) and RTP over UDP (udpsrc). Each ends in ``videoconvert ! BGR ! appsink drop=true
max-buffers=1``: the appsink keeps only the newest frame, so a slow consumer never reads a
stale one. On a Jetson the decoders are the hardware ones (nvv4l2decoder, fed to nvvidconv
for the copy out of NVMM memory), elsewhere avdec_* and jpegdec. The element names and caps
follow jetson-utils' gstCamera / gstDecoder. Python 3.6, no third-party imports.
"""
from edge.gst import gst_quote, rtp_caps
from nanoseg.errors import NanosegError

# nvvidconv flip-method: 0 none, 1 counterclockwise 90, 2 rotate 180, 3 clockwise 90,
# 4 horizontal flip, 5 upper-right diagonal, 6 vertical flip, 7 upper-left diagonal.
FLIP_METHODS = range(8)
TRANSPOSING_FLIPS = (1, 3, 5, 7)  # the 90-degree rotations and both diagonals swap W and H
RTSP_CODECS = ("h264", "h265")
# rtspsrc ``protocols``: auto leaves rtspsrc's own order (UDP, then TCP when UDP brings
# nothing within its timeout); tcp interleaves RTP in the RTSP connection: no lost packets,
# so no smeared or grey frames on a lossy network.
RTSP_TRANSPORTS = ("auto", "tcp", "udp")
# USB camera formats, as --input-codec names them -> the caps v4l2src is asked for.
INPUT_CODECS = ("auto", "mjpeg", "yuyv", "h264")
V4L2_CAPS = {"yuyv": "video/x-raw, format=(string)YUY2",
             "mjpeg": "image/jpeg",
             "h264": "video/x-h264, stream-format=(string)byte-stream"}
APPSINK = "videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1"
JETSON_TO_SYSTEM = "nvvidconv ! video/x-raw, format=(string)BGRx ! "  # NVMM -> system memory


def parse_sensor_mode(text):
    """``"3264x2464"`` or ``"1640x1232@30"`` -> (width, height, fps or None); one-line error."""
    size, _, fps = str(text).strip().lower().partition("@")
    width, sep, height = size.partition("x")
    try:
        parsed = (int(width), int(height), int(fps) if fps else None)
    except ValueError:
        parsed = None
    if not sep or parsed is None or min(v for v in parsed if v is not None) <= 0:
        raise NanosegError("--sensor-mode must be WIDTHxHEIGHT[@FPS], e.g. 3264x2464@21 or "
                           "1640x1232@30 (the IMX219's full field of view), got {!r}".format(
                               text))
    return parsed


def csi_pipeline(sensor_id=0, width=1280, height=720, fps=30, flip=0, sensor_mode=None):
    """The GStreamer pipeline for a Jetson CSI camera, ending in a BGR appsink.

    nvarguscamerasrc delivers NV12 in NVMM memory at the sensor mode's size (``sensor_mode``
    = (w, h, fps or None); by default ``width``x``height`` at ``fps``); nvvidconv flips,
    scales to ``width``x``height`` on the GPU and copies to system memory as BGRx (flip
    methods 1, 3, 5 and 7 rotate or transpose, so its output caps swap width and height);
    videoconvert drops the x. A full-sensor mode (3264x2464 on an IMX219) keeps the whole
    field of view that a 1280x720 mode crops away.
    """
    flip = int(flip)
    if flip not in FLIP_METHODS:
        raise NanosegError("--flip must be an nvvidconv flip-method 0..7, got {}".format(flip))
    sensor_w, sensor_h, sensor_fps = sensor_mode or (width, height, None)
    out_w, out_h = (height, width) if flip in TRANSPOSING_FLIPS else (width, height)
    return (
        "nvarguscamerasrc sensor-id={sensor} ! "
        "video/x-raw(memory:NVMM), width=(int){w}, height=(int){h}, "
        "framerate=(fraction){fps}/1, format=(string)NV12 ! "
        "nvvidconv flip-method={flip} ! "
        "video/x-raw, width=(int){ow}, height=(int){oh}, format=(string)BGRx ! "
        "{appsink}".format(
            sensor=int(sensor_id), w=int(sensor_w), h=int(sensor_h),
            fps=int(sensor_fps or fps), flip=flip, ow=int(out_w), oh=int(out_h),
            appsink=APPSINK))


def check_codec(codec, flag="--rtsp-codec"):
    codec = str(codec).lower()
    if codec not in RTSP_CODECS:
        raise NanosegError("{} must be one of {}, got {!r}".format(
            flag, " ".join(RTSP_CODECS), codec))
    return codec


def decode_chain(codec, jetson):
    """Parsed H.264/H.265 (or JPEG) -> raw frames: the Jetson's hardware decoder, else CPU."""
    if codec == "mjpeg":
        # nvv4l2decoder decodes JPEG in hardware when asked (mjpeg=1); jpegparse frames it
        return ("jpegparse ! nvv4l2decoder mjpeg=1 ! " + JETSON_TO_SYSTEM) if jetson \
            else "jpegdec ! "
    return "{0}parse ! {1}".format(codec, ("nvv4l2decoder ! " + JETSON_TO_SYSTEM) if jetson
                                   else "avdec_{} ! ".format(codec))


def rtsp_pipeline(location, latency=200, jetson=False, codec="h264", user=None,
                  password=None, transport="auto"):
    """A GStreamer pipeline for an H.264/H.265 RTSP stream (hardware decoder on a Jetson).

    ``location`` is the URI without credentials (edge.sources.uri.SourceURI's): ``user``
    and ``password`` go to rtspsrc's ``user-id``/``user-pw`` and every value is quoted, so
    a password with spaces, quotes or ``!`` cannot break the pipeline. The string holds the
    password: never log it. ``transport`` tcp/udp sets rtspsrc ``protocols``.
    """
    codec = check_codec(codec)
    if transport not in RTSP_TRANSPORTS:
        raise NanosegError("--rtsp-transport must be one of {}, got {!r}".format(
            " ".join(RTSP_TRANSPORTS), transport))
    source = "rtspsrc location={} latency={}".format(gst_quote(location), int(latency))
    if transport != "auto":
        source += " protocols={}".format(transport)
    if user is not None:
        source += " user-id={}".format(gst_quote(user))
    if password is not None:
        source += " user-pw={}".format(gst_quote(password))
    return "{} ! rtp{}depay ! {}{}".format(source, codec, decode_chain(codec, jetson), APPSINK)


def rtp_input_pipeline(port, address=None, latency=200, jetson=False, codec="h264"):
    """H.264/H.265 RTP over UDP on ``port`` (every interface unless ``address``: a local
    address, or a multicast group to join), through a jitter buffer of ``latency`` ms."""
    codec = check_codec(codec)
    source = "udpsrc port={}".format(int(port))
    if address:
        source += " address={}".format(gst_quote(address))
    return ("{} buffer-size=2097152 caps={} ! rtpjitterbuffer latency={} ! rtp{}depay ! "
            "{}{}".format(source, gst_quote(rtp_caps(codec)), int(latency), codec,
                          decode_chain(codec, jetson), APPSINK))


def v4l2_pipeline(device, codec, width, height, fps, jetson=False):
    """A USB camera through v4l2src in ``codec`` (yuyv, mjpeg or h264) at the asked mode.

    MJPEG and H.264 are decoded by the Jetson's hardware decoder there (jpegdec/avdec_h264
    elsewhere); YUYV only needs a colour conversion, but a USB 2 camera often gives it at a
    few frames per second at 720p, where MJPEG gives 30 or 60.
    """
    if codec not in V4L2_CAPS:
        raise NanosegError("--input-codec must be one of {}, got {!r}".format(
            " ".join(INPUT_CODECS), codec))
    caps = "{}, width=(int){}, height=(int){}, framerate=(fraction){}/1".format(
        V4L2_CAPS[codec], int(width), int(height), int(fps))
    decode = "" if codec == "yuyv" else decode_chain(codec, jetson)
    return "v4l2src device={} do-timestamp=true ! {} ! {}{}".format(
        gst_quote(device), caps, decode, APPSINK)
