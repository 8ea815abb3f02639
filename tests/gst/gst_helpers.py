"""Helpers for the GStreamer tests: what this Python can do, a real RTSP server process,
camvid frames as a video, PSNR, and stand-ins for the Jetson-only CSI elements.

The tests run under Debian's /usr/bin/python3, whose apt cv2 is built with GStreamer; under
the desktop venv (pip's cv2, no GStreamer, no gi) they skip with the reason from here.
"""
import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
RTSP_SERVER_SCRIPT = os.path.join(HERE, "rtsp_server.py")
SERVER_READY_TIMEOUT = 15.0  # s for the server process to print READY


def cv2_gstreamer_reason():
    """None when cv2 can open GStreamer pipelines, else why not (a skip reason)."""
    try:
        import cv2
    except ImportError:
        return "cv2 is not importable in {}".format(sys.executable)
    from nanoseg.platform_info import opencv_has_gstreamer
    if not opencv_has_gstreamer():
        return ("this cv2 {} has no GStreamer (pip's opencv-python wheels are built without "
                "it): run the gst tests with Debian's /usr/bin/python3 and apt's "
                "python3-opencv".format(cv2.__version__))
    return None


def rtsp_server_reason():
    """None when gst-rtsp-server is usable through gi here, else why not."""
    try:
        import gi
        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtspServer  # noqa: F401
    except (ImportError, ValueError) as exc:
        return ("gi with GstRtspServer is missing ({}): apt install python3-gi "
                "gir1.2-gst-rtsp-server-1.0".format(exc))
    Gst.init(None)
    for element in ("rtspsrc", "x264enc", "avdec_h264", "pngdec", "multifilesrc"):
        if Gst.ElementFactory.find(element) is None:
            return "GStreamer element {} is missing (see jetson/check_platform.py)".format(
                element)
    return None


_CV2_REASON = cv2_gstreamer_reason()
_SERVER_REASON = _CV2_REASON or rtsp_server_reason()
requires_cv2_gstreamer = pytest.mark.skipif(_CV2_REASON is not None,
                                            reason=str(_CV2_REASON))
requires_rtsp_server = pytest.mark.skipif(_SERVER_REASON is not None,
                                          reason=str(_SERVER_REASON))


def wait_until(condition, timeout, step=0.05):
    """Poll ``condition`` until true or ``timeout`` s passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


# -- the served video ------------------------------------------------------------------------
def write_video_frames(folder, images, size=(320, 240)):
    """``images`` (BGR) resized to ``size`` as folder/frame%03d.png; (pattern, frames)."""
    import cv2
    frames = []
    for index, image in enumerate(images):
        frame = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(str(folder), "frame{:03d}.png".format(index)), frame)
        frames.append(frame)
    return os.path.join(str(folder), "frame%03d.png"), frames


def camvid_images(camvid_dir, count):
    """The first ``count`` camvid-mini training photos (BGR): a real street video."""
    import cv2
    folder = os.path.join(camvid_dir, "train")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))[:count]
    return [cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR) for name in names]


def psnr(a, b):
    """Peak signal-to-noise ratio in dB of two uint8 images (inf when identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def best_match(frame, references):
    """(index, PSNR) of the reference ``frame`` is closest to."""
    scores = [psnr(frame, ref) if ref.shape == frame.shape else -1.0 for ref in references]
    index = int(np.argmax(scores))
    return index, scores[index]


# -- a real RTSP server in its own process ----------------------------------------------------
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child: SIGKILL when the test process dies, even before its finalizers run."""
    import ctypes
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class RtspServer(object):
    """tests/gst/rtsp_server.py as a child process that a test can kill, restart or freeze.

    ``start()`` waits (bounded) for its READY line; the port stays the same across restarts.
    ``close()`` always reaps the process, also a frozen one (SIGCONT before SIGKILL).
    """

    def __init__(self, frames, mount="/cam", user=None, password=None, fps=10, digest=False,
                 tcp_only=False):
        self.frames = frames
        self.tcp_only = tcp_only
        self.digest = digest
        self.mount = mount
        self.user = user
        self.password = password
        self.fps = fps
        self.port = 0
        self.process = None

    def command(self):
        command = [sys.executable, RTSP_SERVER_SCRIPT, "--frames", self.frames,
                   "--port", str(self.port), "--mount", self.mount, "--fps", str(self.fps)]
        if self.user is not None:
            command += ["--user", self.user, "--password", self.password or ""]
            command += ["--digest"] if self.digest else []
        command += ["--tcp-only"] if self.tcp_only else []
        return command

    def start(self):
        env = dict(os.environ, GST_DEBUG="0")
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env,
                                        preexec_fn=_die_with_parent)
        line = self._read_line(SERVER_READY_TIMEOUT)
        if not line.startswith("READY "):
            self.kill()
            raise RuntimeError("the RTSP server did not start: {!r} {}".format(
                line, self.process.stderr.read().decode(errors="replace")[-2000:]))
        self.port = int(line.split()[1])
        return self

    def _read_line(self, timeout):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline().decode().strip() if ready else ""

    def uri(self, user=None, password=None, path=None):
        """rtsp://[user:password@]127.0.0.1:PORT/mount (already percent-encoded values)."""
        auth = "" if user is None else "{}:{}@".format(user, password)
        return "rtsp://{}127.0.0.1:{}{}".format(auth, self.port, path or self.mount)

    def kill(self):
        """SIGKILL (a camera losing power) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(10)

    def restart(self):
        self.kill()
        return self.start()

    def freeze(self):
        """SIGSTOP: the connection stays up and nothing arrives (a hung camera)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def close(self):
        self.kill()
        if self.process is not None:
            for pipe in (self.process.stdout, self.process.stderr):
                pipe.close()


# -- CSI stand-ins -----------------------------------------------------------------------------
# nvvidconv flip-method -> the videoflip video-direction that does the same thing.
NVVIDCONV_TO_VIDEOFLIP = {0: "identity", 1: "90l", 2: "180", 3: "90r", 4: "horiz",
                          5: "ur-ll", 6: "vert", 7: "ul-lr"}


def csi_standin(pipeline, num_buffers=3, pattern="colors", scale=False):
    """``pipeline`` (edge.gst_capture.csi_pipeline's) with desktop elements for the Jetson ones.

    nvarguscamerasrc -> a live videotestsrc (``num_buffers`` frames; "colors" is static and
    different under every flip, unlike "smpte", whose first frame varies), NVMM caps -> system
    memory caps, nvvidconv flip-method=N -> videoflip (the same rotation) + videoconvert (the
    colour conversion nvvidconv does; ``scale``: + videoscale, for a --sensor-mode pipeline,
    where nvvidconv also scales). Every caps filter of the product string stays as it is,
    so a wrong width/height/format there fails to negotiate here too.
    """
    elements = [part.strip() for part in pipeline.split("!")]
    translated = []
    for element in elements:
        name = element.split()[0]
        if name == "nvarguscamerasrc":
            element = "videotestsrc is-live=true num-buffers={} pattern={}".format(
                int(num_buffers), pattern)
        elif name == "nvvidconv":
            method = int(dict(p.split("=", 1) for p in element.split()[1:])
                         .get("flip-method", 0))
            element = "videoflip video-direction={} ! {}videoconvert".format(
                NVVIDCONV_TO_VIDEOFLIP[method], "videoscale ! " if scale else "")
        elif element.startswith("video/x-raw(memory:NVMM)"):
            element = "video/x-raw" + element[len("video/x-raw(memory:NVMM)"):]
        translated.append(element)
    leftover = [e for e in translated if e.split()[0].startswith("nv") or "NVMM" in e]
    if leftover:
        raise ValueError("no stand-in for {}".format(leftover))
    return " ! ".join(translated)


# -- V4L2 stand-ins ----------------------------------------------------------------------------
# What makes videotestsrc's raw frames look like the camera's format named by the caps after
# v4l2src, and desktop elements for the Jetson's decoders.
V4L2_ENCODERS = {"video/x-raw": "", "image/jpeg": " ! jpegenc quality=95",
                 "video/x-h264": " ! x264enc tune=zerolatency speed-preset=ultrafast "
                                 "key-int-max=1 ! h264parse"}
JETSON_DECODERS = {"nvv4l2decoder mjpeg=1": "jpegdec", "nvv4l2decoder": "avdec_h264",
                   "nvvidconv": "videoconvert"}


def v4l2_standin(pipeline, num_buffers=3, pattern="colors"):
    """``pipeline`` (edge.gst_capture.v4l2_pipeline's) with a camera that is videotestsrc
    encoded to the caps' format (jpegenc for MJPEG, x264enc for H.264), and desktop
    decoders for the Jetson's. Every caps filter of the product string stays as it is."""
    elements = [part.strip() for part in pipeline.split("!")]
    if not elements[0].startswith("v4l2src "):
        raise ValueError("not a v4l2src pipeline: {}".format(pipeline))
    kind = elements[1].split(",")[0]
    translated = ["videotestsrc is-live=true num-buffers={} pattern={}{}".format(
        int(num_buffers), pattern, V4L2_ENCODERS[kind])]
    for element in elements[1:]:
        translated.append(JETSON_DECODERS.get(element, element))
    leftover = [e for e in translated if e.split()[0].startswith("nv") or "NVMM" in e]
    if leftover:
        raise ValueError("no stand-in for {}".format(leftover))
    return " ! ".join(translated)
