"""GStreamer elements (which exist, asked once) and every pipeline string nanoseg builds.

Capture: the CSI camera and RTSP pipelines that end in an ``appsink`` for
``cv2.VideoCapture``. Output: OpenCV's GStreamer backend opens a ``cv2.VideoWriter`` on a
pipeline string that starts with ``appsrc``; everything after it is built here from the
elements this machine really has:
the Jetson's hardware encoder (``nvv4l2h264enc``, fed NVMM memory through ``nvvidconv``),
else ``x264enc``, else ``openh264enc``. Whether an element exists comes from
``Gst.ElementFactory.find`` when python3-gi is importable, else from ``gst-inspect-1.0
--exists``; each answer is cached for the process and the way it was found is logged.
Python 3.6, no third-party imports (gi is optional) and no cv2: jetson/check_platform.py
uses it to report on a machine whose OpenCV is broken.
"""
import functools
import importlib
import logging
import subprocess

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

# Where each element comes from: Debian/Ubuntu (and JetPack's Ubuntu 18.04) packages.
ELEMENT_PACKAGES = {
    "appsrc": "gstreamer1.0-plugins-base", "appsink": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base", "videotestsrc": "gstreamer1.0-plugins-base",
    "filesink": "libgstreamer1.0-0",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "openh264enc": "gstreamer1.0-plugins-bad", "h264parse": "gstreamer1.0-plugins-bad",
    "mp4mux": "gstreamer1.0-plugins-good", "matroskamux": "gstreamer1.0-plugins-good",
    "rtph264pay": "gstreamer1.0-plugins-good", "rtph264depay": "gstreamer1.0-plugins-good",
    "udpsink": "gstreamer1.0-plugins-good", "udpsrc": "gstreamer1.0-plugins-good",
    "rtspsrc": "gstreamer1.0-plugins-good", "videoflip": "gstreamer1.0-plugins-good",
    "avdec_h264": "gstreamer1.0-libav",
    "nvv4l2h264enc": "nvidia-l4t-gstreamer", "nvv4l2decoder": "nvidia-l4t-gstreamer",
    "nvvidconv": "nvidia-l4t-gstreamer", "nvarguscamerasrc": "nvidia-l4t-gstreamer",
}
# Preferred first: the Jetson's hardware encoder, then the software ones.
H264_ENCODERS = ("nvv4l2h264enc", "x264enc", "openh264enc")
HARDWARE_ENCODER_NEEDS = ("nvvidconv",)  # nvv4l2h264enc takes NVMM buffers only
CONTAINER_MUXERS = {".mp4": "mp4mux", ".mkv": "matroskamux"}
WRITER_ELEMENTS = ("appsrc", "videoconvert", "h264parse")
RTP_ELEMENTS = ("rtph264pay", "udpsink")
RTSP_SERVER_ELEMENTS = ("udpsrc", "rtph264depay")
RTP_PAYLOAD = 96
RTP_CAPS = ("application/x-rtp, media=(string)video, clock-rate=(int)90000, "
            "encoding-name=(string)H264, payload=(int){}".format(RTP_PAYLOAD))
# What nanoseg's sources and outputs need, per platform: each entry lists alternatives
# (one of them is enough). The Jetson decodes, converts and encodes in hardware.
COMMON_REQUIREMENTS = [(name,) for name in (
    "appsrc", "appsink", "videoconvert", "h264parse", "mp4mux", "matroskamux", "filesink",
    "rtspsrc", "rtph264depay", "rtph264pay", "udpsink", "udpsrc")]
JETSON_REQUIREMENTS = [(name,) for name in (
    "nvarguscamerasrc", "nvvidconv", "nvv4l2decoder", "nvv4l2h264enc")]
DESKTOP_REQUIREMENTS = [("avdec_h264",), ("x264enc", "openh264enc")]
# nvvidconv flip-method: 0 none, 1 counterclockwise 90, 2 rotate 180, 3 clockwise 90,
# 4 horizontal flip, 5 upper-right diagonal, 6 vertical flip, 7 upper-left diagonal.
FLIP_METHODS = range(8)
TRANSPOSING_FLIPS = (1, 3, 5, 7)  # the 90-degree rotations and both diagonals swap W and H
RTSP_CODECS = ("h264", "h265")
DEFAULT_BITRATE_KBPS = 4000
DEFAULT_KEY_INTERVAL = 30  # frames between key frames: where an RTP/RTSP viewer can join


def gst_quote(value):
    """A GStreamer pipeline property value in double quotes, escaped for gst_parse_launch."""
    return '"{}"'.format(str(value).replace("\\", "\\\\").replace('"', '\\"'))


def package_of(element):
    """The apt package that provides ``element`` (a phrase when it is not one we know)."""
    return ELEMENT_PACKAGES.get(element, "the package that provides it (unknown to nanoseg)")


GI_VERSIONS = {"Gst": "1.0", "GstRtspServer": "1.0"}
RTSP_APT_PACKAGES = "python3-gi gir1.2-gst-rtsp-server-1.0"


def import_gst(*names):
    """(Gst, *names) from python3-gi, Gst initialised: the one place gi is imported.

    ``names`` are further gi.repository modules ("GLib", "GstRtspServer"). ImportError or
    ValueError (a typelib gi cannot find) propagate: each caller words what is missing.
    """
    import gi
    modules = ("Gst",) + tuple(names)
    for name in modules:
        if name in GI_VERSIONS:
            gi.require_version(name, GI_VERSIONS[name])
    imported = tuple(importlib.import_module("gi.repository." + name) for name in modules)
    if not imported[0].is_initialized():
        imported[0].init(None)
    return imported


def _find_with_gi(name):
    """True/False from Gst.ElementFactory.find, or None when python3-gi is not importable."""
    try:
        (Gst,) = import_gst()
    except (ImportError, ValueError):
        return None
    return Gst.ElementFactory.find(name) is not None


def _find_with_inspect(name, timeout=20):
    """True/False from ``gst-inspect-1.0 --exists``, or None when that tool is missing."""
    try:
        proc = subprocess.Popen(["gst-inspect-1.0", "--exists", name],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    try:
        return proc.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


@functools.lru_cache(maxsize=None)
def element_exists(name):
    """Whether GStreamer has the element ``name``; asked once per process, then cached.

    The registry does not change while nanoseg runs, and gst-inspect costs a process start.
    """
    for how, find in (("Gst.ElementFactory.find", _find_with_gi),
                      ("gst-inspect-1.0 --exists", _find_with_inspect)):
        found = find(name)
        if found is not None:
            LOG.debug("GStreamer element %s: %s (%s)", name, "present" if found else "absent",
                      how)
            return found
    LOG.debug("GStreamer element %s: unknown (neither python3-gi nor gst-inspect-1.0 "
              "available): treated as absent", name)
    return False


def missing_elements(names, exists=element_exists):
    """The names in ``names`` that this GStreamer does not have, in order."""
    return [name for name in names if not exists(name)]


def describe_missing(names):
    """``x264enc (apt gstreamer1.0-plugins-ugly), ...``: what to install for each."""
    return ", ".join("{} (apt {})".format(name, package_of(name)) for name in names)


def platform_requirements(jetson):
    """The element alternatives nanoseg needs on a Jetson (``jetson``) or elsewhere."""
    return COMMON_REQUIREMENTS + (JETSON_REQUIREMENTS if jetson else DESKTOP_REQUIREMENTS)


def unmet_requirements(requirements, exists=element_exists):
    """The entries of ``requirements`` none of whose alternatives exists, in order."""
    return [group for group in requirements if not any(exists(name) for name in group)]


def describe_requirement(group):
    """``x264enc (apt gstreamer1.0-plugins-ugly) or openh264enc (apt ...)``."""
    return " or ".join(describe_missing([name]) for name in group)


@functools.lru_cache(maxsize=None)
def choose_h264_encoder(exists=element_exists):
    """The first usable H.264 encoder of :data:`H264_ENCODERS`, or None; logs why, once.

    ``nvv4l2h264enc`` counts only together with ``nvvidconv`` (it cannot read system memory).
    """
    for encoder in H264_ENCODERS:
        needs = (encoder,) + (HARDWARE_ENCODER_NEEDS if encoder == "nvv4l2h264enc" else ())
        missing = missing_elements(needs, exists)
        if not missing:
            LOG.info("H.264 encoder: %s", encoder)
            return encoder
        LOG.info("H.264 encoder %s not usable: %s missing", encoder, " ".join(missing))
    return None


def encoder_chain(encoder, bitrate_kbps=DEFAULT_BITRATE_KBPS,
                  key_interval=DEFAULT_KEY_INTERVAL):
    """The pipeline from raw BGR frames to a parsed H.264 stream with ``encoder``.

    No B-frames (zerolatency) and a key frame every ``key_interval`` frames with SPS/PPS
    repeated, so a stream can be joined late and a file decodes from its first frame.
    """
    kbps, key = int(bitrate_kbps), int(key_interval)
    if encoder == "nvv4l2h264enc":
        encode = ("videoconvert ! video/x-raw, format=(string)BGRx ! nvvidconv ! "
                  "video/x-raw(memory:NVMM), format=(string)NV12 ! "
                  "nvv4l2h264enc bitrate={} iframeinterval={} idrinterval={} "
                  "insert-sps-pps=true".format(kbps * 1000, key, key))
    elif encoder == "x264enc":
        encode = ("videoconvert ! video/x-raw, format=(string)I420 ! "
                  "x264enc tune=zerolatency speed-preset=ultrafast bitrate={} "
                  "key-int-max={}".format(kbps, key))
    elif encoder == "openh264enc":
        encode = ("videoconvert ! video/x-raw, format=(string)I420 ! "
                  "openh264enc bitrate={} gop-size={}".format(kbps * 1000, key))
    else:
        raise NanosegError("unknown H.264 encoder {!r}: nanoseg knows {}".format(
            encoder, " ".join(H264_ENCODERS)))
    return "{} ! h264parse config-interval=-1".format(encode)


def file_pipeline(path, encoder, container, bitrate_kbps=DEFAULT_BITRATE_KBPS):
    """appsrc -> H.264 -> mp4mux/matroskamux -> ``path`` (the muxer needs EOS to finish)."""
    muxer = CONTAINER_MUXERS.get(container)
    if muxer is None:
        raise NanosegError("H.264 files are .mp4 or .mkv, not {!r}".format(container))
    return "appsrc ! {} ! {} ! filesink location={}".format(
        encoder_chain(encoder, bitrate_kbps), muxer, gst_quote(path))


def rtp_pipeline(host, port, encoder, bitrate_kbps=DEFAULT_BITRATE_KBPS):
    """appsrc -> H.264 -> RTP (payload 96, SPS/PPS with every key frame) -> UDP host:port.

    ``sync=false``: frames leave as soon as they are encoded (the source sets the pace).
    """
    return ("appsrc ! {} ! rtph264pay config-interval=1 pt={} ! "
            "udpsink host={} port={} sync=false async=false".format(
                encoder_chain(encoder, bitrate_kbps), RTP_PAYLOAD, gst_quote(host), int(port)))


def rtsp_media_launch(rtp_port, host="127.0.0.1"):
    """The RTSP server's media: the H.264 RTP that the writer sends to ``host:rtp_port``.

    The packets are re-payloaded, not re-encoded: a real payloader named ``pay0`` gives
    gst-rtsp-server the stream's SPS/PPS for its SDP.
    """
    return ("( udpsrc address={} port={} buffer-size=2097152 caps={} ! rtph264depay ! "
            "rtph264pay name=pay0 pt={} config-interval=1 )".format(
                gst_quote(host), int(rtp_port), gst_quote(RTP_CAPS), RTP_PAYLOAD))


# -- capture pipelines (cv2.VideoCapture) ---------------------------------------------------
def csi_pipeline(sensor_id=0, width=1280, height=720, fps=30, flip=0):
    """The GStreamer pipeline for a Jetson CSI camera, ending in a BGR appsink.

    nvarguscamerasrc delivers NV12 in NVMM memory at ``width``x``height`` (the sensor mode);
    nvvidconv flips and copies to system memory as BGRx (flip methods 1, 3, 5 and 7 rotate
    or transpose, so its output caps swap width and height); videoconvert drops the x; the
    appsink keeps only the newest buffer (``drop=true max-buffers=1``) so a slow consumer
    never reads a stale frame.
    """
    flip = int(flip)
    if flip not in FLIP_METHODS:
        raise NanosegError("--flip must be an nvvidconv flip-method 0..7, got {}".format(flip))
    out_w, out_h = (height, width) if flip in TRANSPOSING_FLIPS else (width, height)
    return (
        "nvarguscamerasrc sensor-id={sensor} ! "
        "video/x-raw(memory:NVMM), width=(int){w}, height=(int){h}, "
        "framerate=(fraction){fps}/1, format=(string)NV12 ! "
        "nvvidconv flip-method={flip} ! "
        "video/x-raw, width=(int){ow}, height=(int){oh}, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1".format(
            sensor=int(sensor_id), w=int(width), h=int(height), fps=int(fps), flip=flip,
            ow=int(out_w), oh=int(out_h)))


def rtsp_pipeline(location, latency=200, jetson=False, codec="h264", user=None,
                  password=None):
    """A GStreamer pipeline for an H.264/H.265 RTSP stream (hardware decoder on a Jetson).

    ``location`` is the URI without credentials (edge.sources.uri.SourceURI's): ``user``
    and ``password`` go to rtspsrc's ``user-id``/``user-pw`` and every value is quoted, so
    a password with spaces, quotes or ``!`` cannot break the pipeline. The string holds the
    password: never log it.
    """
    codec = str(codec).lower()
    if codec not in RTSP_CODECS:
        raise NanosegError("--rtsp-codec must be one of {}, got {!r}".format(
            " ".join(RTSP_CODECS), codec))
    source = "rtspsrc location={} latency={}".format(gst_quote(location), int(latency))
    if user is not None:
        source += " user-id={}".format(gst_quote(user))
    if password is not None:
        source += " user-pw={}".format(gst_quote(password))
    depay = "rtp{0}depay ! {0}parse".format(codec)
    decode = ("nvv4l2decoder ! nvvidconv ! video/x-raw, format=(string)BGRx ! "
              if jetson else "avdec_{} ! ".format(codec))
    return ("{} ! {} ! {}videoconvert ! video/x-raw, format=(string)BGR ! "
            "appsink drop=true max-buffers=1".format(source, depay, decode))
