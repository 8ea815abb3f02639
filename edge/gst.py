"""GStreamer elements (which exist, asked once) and the output pipeline strings.

The capture pipelines (CSI, V4L2, RTSP, RTP input) are edge/gst_capture.py's. Output:
OpenCV's GStreamer backend opens a ``cv2.VideoWriter`` on a pipeline string that starts
with ``appsrc``; everything after it is built here from the elements this machine really
has:
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
    "avdec_h264": "gstreamer1.0-libav", "avdec_h265": "gstreamer1.0-libav",
    "v4l2src": "gstreamer1.0-plugins-good", "jpegdec": "gstreamer1.0-plugins-good",
    "jpegparse": "gstreamer1.0-plugins-bad", "rtpjitterbuffer": "gstreamer1.0-plugins-good",
    "h265parse": "gstreamer1.0-plugins-bad", "rtph265pay": "gstreamer1.0-plugins-good",
    "rtph265depay": "gstreamer1.0-plugins-good", "x265enc": "gstreamer1.0-plugins-bad",
    "multifilesink": "gstreamer1.0-plugins-good", "nvv4l2h265enc": "nvidia-l4t-gstreamer",
    "nvv4l2h264enc": "nvidia-l4t-gstreamer", "nvv4l2decoder": "nvidia-l4t-gstreamer",
    "nvvidconv": "nvidia-l4t-gstreamer", "nvarguscamerasrc": "nvidia-l4t-gstreamer",
}
# Preferred first: the Jetson's hardware encoder, then the software ones.
H264_ENCODERS = ("nvv4l2h264enc", "x264enc", "openh264enc")
OUTPUT_CODECS = ("h264", "h265")
ENCODERS = {"h264": H264_ENCODERS, "h265": ("nvv4l2h265enc", "x265enc")}
HARDWARE_ENCODERS = ("nvv4l2h264enc", "nvv4l2h265enc")
HARDWARE_ENCODER_NEEDS = ("nvvidconv",)  # nvv4l2h26xenc takes NVMM buffers only
CONTAINER_MUXERS = {".mp4": "mp4mux", ".mkv": "matroskamux"}
WRITER_ELEMENTS = ("appsrc", "videoconvert", "h264parse")
RTP_ELEMENTS = ("rtph264pay", "udpsink")
RTSP_SERVER_ELEMENTS = ("udpsrc", "rtph264depay")
RTP_PAYLOAD = 96


def rtp_caps(codec="h264"):
    """The caps of nanoseg's RTP (udpsrc cannot learn them from the stream)."""
    return ("application/x-rtp, media=(string)video, clock-rate=(int)90000, "
            "encoding-name=(string){}, payload=(int){}".format(codec.upper(), RTP_PAYLOAD))


RTP_CAPS = rtp_caps("h264")
# What nanoseg's sources and outputs need, per platform: each entry lists alternatives
# (one of them is enough). The Jetson decodes, converts and encodes in hardware.
COMMON_REQUIREMENTS = [(name,) for name in (
    "appsrc", "appsink", "videoconvert", "h264parse", "mp4mux", "matroskamux", "filesink",
    "rtspsrc", "rtph264depay", "rtph264pay", "udpsink", "udpsrc")]
JETSON_REQUIREMENTS = [(name,) for name in (
    "nvarguscamerasrc", "nvvidconv", "nvv4l2decoder", "nvv4l2h264enc")]
DESKTOP_REQUIREMENTS = [("avdec_h264",), ("x264enc", "openh264enc")]
# What single options need beyond the requirements: (option, Jetson elements, elsewhere).
# jetson/check_platform.py reports them; a missing one never fails set-up (only the option).
FEATURE_ELEMENTS = (
    ("--input-codec (USB cameras through GStreamer)", ("v4l2src",), ("v4l2src",)),
    ("--input-codec mjpeg", ("jpegparse", "nvv4l2decoder"), ("jpegdec",)),
    ("--input-codec h264", ("h264parse", "nvv4l2decoder"), ("h264parse", "avdec_h264")),
    ("--output-codec h265", ("h265parse", "nvv4l2h265enc"), ("h265parse", "x265enc")),
    ("rtp:// input", ("udpsrc", "rtpjitterbuffer", "rtph264depay"),
     ("udpsrc", "rtpjitterbuffer", "rtph264depay")),
)
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


def missing_features(jetson, exists=element_exists):
    """[(option, [missing elements])] of the FEATURE_ELEMENTS rows this GStreamer cannot run."""
    missing = []
    for option, on_jetson, elsewhere in FEATURE_ELEMENTS:
        absent = missing_elements(on_jetson if jetson else elsewhere, exists)
        if absent:
            missing.append((option, absent))
    return missing


def unmet_requirements(requirements, exists=element_exists):
    """The entries of ``requirements`` none of whose alternatives exists, in order."""
    return [group for group in requirements if not any(exists(name) for name in group)]


def describe_requirement(group):
    """``x264enc (apt gstreamer1.0-plugins-ugly) or openh264enc (apt ...)``."""
    return " or ".join(describe_missing([name]) for name in group)


@functools.lru_cache(maxsize=None)
def choose_encoder(codec="h264", exists=element_exists):
    """The first usable encoder of ``ENCODERS[codec]``, or None; logs why, once.

    The hardware encoders count only together with ``nvvidconv`` (they cannot read system
    memory).
    """
    name = codec.upper().replace("H2", "H.2")
    for encoder in ENCODERS[codec]:
        needs = (encoder,) + (HARDWARE_ENCODER_NEEDS if encoder in HARDWARE_ENCODERS else ())
        missing = missing_elements(needs, exists)
        if not missing:
            LOG.info("%s encoder: %s", name, encoder)
            return encoder
        LOG.info("%s encoder %s not usable: %s missing", name, encoder, " ".join(missing))
    return None


def choose_h264_encoder(exists=element_exists):
    """The first usable H.264 encoder of :data:`H264_ENCODERS`, or None."""
    return choose_encoder("h264", exists)


def codec_of(encoder):
    """"h265" for an H.265 encoder, else "h264"."""
    return "h265" if "265" in str(encoder) else "h264"


def writer_elements(codec):
    """What every writer of ``codec`` needs besides its encoder."""
    return ("appsrc", "videoconvert", codec + "parse")


def rtp_elements(codec):
    return ("rtp{}pay".format(codec), "udpsink")


def rtsp_server_elements(codec):
    return ("udpsrc", "rtp{}depay".format(codec))


def encoder_chain(encoder, bitrate_kbps=DEFAULT_BITRATE_KBPS,
                  key_interval=DEFAULT_KEY_INTERVAL):
    """The pipeline from raw BGR frames to a parsed H.264 (or H.265) stream with ``encoder``.

    No B-frames (zerolatency) and a key frame every ``key_interval`` frames with SPS/PPS
    repeated, so a stream can be joined late and a file decodes from its first frame.
    """
    kbps, key = int(bitrate_kbps), int(key_interval)
    if encoder in HARDWARE_ENCODERS:
        encode = ("videoconvert ! video/x-raw, format=(string)BGRx ! nvvidconv ! "
                  "video/x-raw(memory:NVMM), format=(string)NV12 ! "
                  "{} bitrate={} iframeinterval={} idrinterval={} "
                  "insert-sps-pps=true".format(encoder, kbps * 1000, key, key))
    elif encoder in ("x264enc", "x265enc"):
        encode = ("videoconvert ! video/x-raw, format=(string)I420 ! "
                  "{} tune=zerolatency speed-preset=ultrafast bitrate={} "
                  "key-int-max={}".format(encoder, kbps, key))
    elif encoder == "openh264enc":
        encode = ("videoconvert ! video/x-raw, format=(string)I420 ! "
                  "openh264enc bitrate={} gop-size={}".format(kbps * 1000, key))
    else:
        raise NanosegError("unknown H.264 encoder {!r}: nanoseg knows {}".format(
            encoder, " ".join(H264_ENCODERS + ENCODERS["h265"])))
    return "{} ! {}parse config-interval=-1".format(encode, codec_of(encoder))


def file_pipeline(path, encoder, container, bitrate_kbps=DEFAULT_BITRATE_KBPS):
    """appsrc -> H.264 -> mp4mux/matroskamux -> ``path`` (the muxer needs EOS to finish)."""
    muxer = CONTAINER_MUXERS.get(container)
    if muxer is None:
        raise NanosegError("H.264 files are .mp4 or .mkv, not {!r}".format(container))
    return "appsrc ! {} ! {} ! filesink location={}".format(
        encoder_chain(encoder, bitrate_kbps), muxer, gst_quote(path))


def rtp_pipeline(host, port, encoder, bitrate_kbps=DEFAULT_BITRATE_KBPS):
    """appsrc -> H.264/H.265 -> RTP (payload 96, SPS/PPS with every key frame) -> UDP.

    ``sync=false``: frames leave as soon as they are encoded (the source sets the pace).
    """
    return ("appsrc ! {} ! rtp{}pay config-interval=1 pt={} ! "
            "udpsink host={} port={} sync=false async=false".format(
                encoder_chain(encoder, bitrate_kbps), codec_of(encoder), RTP_PAYLOAD,
                gst_quote(host), int(port)))


def rtsp_media_launch(rtp_port, host="127.0.0.1", codec="h264"):
    """The RTSP server's media: the RTP that the writer sends to ``host:rtp_port``.

    The packets are re-payloaded, not re-encoded: a real payloader named ``pay0`` gives
    gst-rtsp-server the stream's SPS/PPS for its SDP.
    """
    return ("( udpsrc address={} port={} buffer-size=2097152 caps={} ! rtp{codec}depay ! "
            "rtp{codec}pay name=pay0 pt={} config-interval=1 )".format(
                gst_quote(host), int(rtp_port), gst_quote(rtp_caps(codec)), RTP_PAYLOAD,
                codec=codec))
