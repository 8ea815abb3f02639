"""Frame sources behind one abstraction: CSI and USB cameras, RTSP, video files, image folders.

:func:`open_source` turns a URI into a :class:`SourceStream`: a reader (how to get one BGR
frame) driven by a capture thread. Live sources keep only the latest frame (a slow consumer
sees fresh frames; the stale ones are dropped and counted) and reconnect with exponential
back-off when the camera is lost; files and folders deliver every frame in order (exact
counts) and end cleanly. Python 3.6 + numpy + JetPack's OpenCV 4.1.1 only.
"""
import glob
import logging
import os
import threading
import time

from urllib.parse import urlsplit, urlunsplit

import cv2

from edge.errors import NanosegError

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264")
ACCEPTED_FORMS = ("csi://N (Jetson CSI camera N)", "v4l2:///dev/videoN or a device index "
                  "like 0 (USB camera)", "rtsp://[user:pass@]host[:port]/path",
                  "a video file ({})".format(" ".join(VIDEO_EXTENSIONS)),
                  "an image folder", "an image glob like 'frames/*.png'")
FLIP_METHODS = range(8)  # nvvidconv flip-method 0..7 (0 none, 2 rotate 180, 4 horizontal...)
JETSON_RELEASE_FILE = "/etc/nv_tegra_release"


# -- URIs and pipeline strings (pure functions) --------------------------------------------
def redact_uri(uri):
    """``uri`` with any user name and password replaced by ``***``: safe to log or print."""
    text = str(uri)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.username is None and parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port is not None:
        host = "{}:{}".format(host, parts.port)
    return urlunsplit((parts.scheme, "***:***@" + host, parts.path, parts.query, parts.fragment))


def csi_pipeline(sensor_id=0, width=1280, height=720, fps=30, flip=0):
    """The GStreamer pipeline for a Jetson CSI camera, ending in a BGR appsink.

    nvarguscamerasrc delivers NV12 in NVMM memory; nvvidconv flips and copies to system
    memory as BGRx; videoconvert drops the x; the appsink keeps only the newest buffer
    (``drop=true max-buffers=1``) so a slow consumer never reads a stale frame.
    """
    if int(flip) not in FLIP_METHODS:
        raise NanosegError("--flip must be an nvvidconv flip-method 0..7, got {}".format(flip))
    return (
        "nvarguscamerasrc sensor-id={sensor} ! "
        "video/x-raw(memory:NVMM), width=(int){w}, height=(int){h}, "
        "framerate=(fraction){fps}/1, format=(string)NV12 ! "
        "nvvidconv flip-method={flip} ! "
        "video/x-raw, width=(int){w}, height=(int){h}, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1".format(
            sensor=int(sensor_id), w=int(width), h=int(height), fps=int(fps), flip=int(flip)))


def rtsp_pipeline(uri, latency=200, jetson=False):
    """A GStreamer pipeline for an H.264 RTSP stream (hardware decoder on a Jetson)."""
    decode = ("nvv4l2decoder ! nvvidconv ! video/x-raw, format=(string)BGRx ! "
              if jetson else "avdec_h264 ! ")
    return ("rtspsrc location={} latency={} ! rtph264depay ! h264parse ! {}"
            "videoconvert ! video/x-raw, format=(string)BGR ! "
            "appsink drop=true max-buffers=1".format(uri, int(latency), decode))


def opencv_has_gstreamer():
    """True when this OpenCV build can open GStreamer pipelines (JetPack's can)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def is_jetson():
    """True on a Jetson (L4T): pick the hardware decoder there."""
    return os.path.isfile(JETSON_RELEASE_FILE)


# -- readers: one frame at a time ----------------------------------------------------------
class Reader(object):
    """How to get frames from one kind of source; the stream drives it from its thread.

    ``open()`` raises NanosegError when the source cannot be opened; ``read()`` returns
    ``(name, bgr_uint8)`` or None at the end of the source (or when a live camera fails).
    """

    live = False
    description = "source"
    fps = None

    def open(self):
        raise NotImplementedError

    def read(self):
        raise NotImplementedError

    def close(self):
        pass


class CaptureReader(Reader):
    """A cv2.VideoCapture opened by ``opener`` (files, cameras, RTSP, GStreamer pipelines)."""

    def __init__(self, description, opener, live, size=None, fps=None):
        self.description = description
        self._opener = opener
        self.live = live
        self._size = size
        self._want_fps = fps
        self._capture = None
        self._count = 0
        self.fps = None

    def open(self):
        """Open (or reopen) the capture; one-line error naming the (redacted) source."""
        self.close()
        try:
            capture = self._opener()
        except cv2.error as exc:
            raise NanosegError("cannot open {}: {}".format(self.description,
                                                          str(exc).strip().splitlines()[-1]))
        if capture is None or not capture.isOpened():
            raise NanosegError("cannot open {}: OpenCV could not open it (check the device, "
                               "address or file, and that it is not in use)".format(
                                   self.description))
        self._configure(capture)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        self._capture = capture
        self._count = 0

    def _configure(self, capture):
        """Ask a USB camera for the requested size and rate (it may pick the nearest)."""
        if self._size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        if self._want_fps:
            capture.set(cv2.CAP_PROP_FPS, self._want_fps)

    def read(self):
        if self._capture is None:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        self._count += 1
        return "frame{:06d}".format(self._count - 1), frame

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class ImageListReader(Reader):
    """Images from a sorted list of paths, each read as BGR; the stem names the frame."""

    def __init__(self, paths, description):
        self.paths = list(paths)
        self.description = description
        self._next = 0

    def open(self):
        self._next = 0

    def read(self):
        if self._next >= len(self.paths):
            return None
        path = self.paths[self._next]
        self._next += 1
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise NanosegError("cannot read image {}: not an image OpenCV can decode (remove "
                               "it from the folder)".format(path))
        return os.path.splitext(os.path.basename(path))[0], frame


# -- the stream: a capture thread in front of a reader -------------------------------------
class Frame(object):
    """One captured frame: its index in the stream, a name, the BGR image, capture time."""

    __slots__ = ("index", "name", "image", "time")

    def __init__(self, index, name, image, when):
        self.index = index
        self.name = name
        self.image = image
        self.time = when


class SourceStream(object):
    """Runs a :class:`Reader` on its own thread and hands frames to one consumer.

    Live readers: a one-slot mailbox (latest frame wins; overwritten frames are counted in
    ``dropped``) and reconnection with back-off ``backoff * 2**k`` for ``reconnect_attempts``
    tries. Files/folders: a bounded queue the thread blocks on, so no frame is ever lost.
    """

    def __init__(self, reader, loop=False, reconnect_attempts=5, backoff=0.5,
                 max_backoff=8.0, queue_size=4):
        self.reader = reader
        self.loop = loop
        self.reconnect_attempts = int(reconnect_attempts)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.queue_size = int(queue_size)
        self.captured = 0
        self.dropped = 0
        self.reconnects = 0
        self.end_reason = None
        self.error = None
        self._frames = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._thread = None

    @property
    def live(self):
        return self.reader.live

    @property
    def description(self):
        return self.reader.description

    @property
    def fps(self):
        return self.reader.fps

    def start(self):
        """Open the source (errors surface here, in the caller) and start capturing."""
        LOG.info("opening %s", self.description)
        self.reader.open()
        LOG.info("opened %s (%s)", self.description,
                 "live, latest frame wins" if self.live else "every frame")
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout=None):
        """The next frame, or None at the end of the stream (or after ``timeout`` s)."""
        deadline = None if timeout is None else time.time() + timeout
        with self._cond:
            while not self._frames and not self._done:
                remaining = None if deadline is None else deadline - time.time()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.1 if remaining is None else min(0.1, remaining))
            if not self._frames:
                return None
            frame = self._frames.pop(0)
            self._cond.notify_all()
            return frame

    @property
    def finished(self):
        """True once the stream ended and every delivered frame was taken."""
        with self._cond:
            return self._done and not self._frames

    def stop(self):
        """Stop capturing and release the source (safe to call twice)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self.reader.close()

    # -- capture thread ------------------------------------------------------------------
    def _run(self):
        try:
            self._capture_loop()
        except NanosegError as exc:
            self.error = str(exc)
            self.end_reason = "error"
            LOG.error("%s", exc)
        except Exception as exc:  # keep the consumer from hanging on an unexpected bug
            self.error = "capture thread failed: {!r}".format(exc)
            self.end_reason = "error"
            LOG.exception("capture from %s failed", self.description)
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _capture_loop(self):
        index = 0
        while not self._stop.is_set():
            item = self._read_safely()
            if item is None:
                if self._stop.is_set():
                    self.end_reason = "stopped"
                    return
                if not self._recover():
                    return
                continue
            name, image = item
            self._deliver(Frame(index, name, image, time.time()))
            index += 1
        self.end_reason = "stopped"

    def _read_safely(self):
        """A frame, or None when the reader ends or a live reader fails (logged)."""
        try:
            return self.reader.read()
        except (NanosegError, cv2.error, OSError) as exc:
            if not self.live:
                raise
            LOG.warning("reading %s failed: %s", self.description,
                        str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
            return None

    def _recover(self):
        """After a None read: loop a file, reconnect a live source, or end. True = go on."""
        if not self.live:
            if self.loop and self.captured:
                self.reader.close()
                self.reader.open()
                return True
            self.end_reason = "end of source"
            LOG.info("end of %s after %d frames", self.description, self.captured)
            return False
        return self._reconnect()

    def _reconnect(self):
        """Reopen a lost live source with exponential back-off; False when it stays lost."""
        self.reader.close()
        delay = self.backoff
        for attempt in range(1, self.reconnect_attempts + 1):
            LOG.warning("lost %s: reconnect attempt %d/%d in %.1f s", self.description,
                        attempt, self.reconnect_attempts, delay)
            if self._stop.wait(delay):
                self.end_reason = "stopped"
                return False
            try:
                self.reader.open()
            except NanosegError as exc:
                LOG.warning("reconnect %d/%d failed: %s", attempt, self.reconnect_attempts, exc)
                delay = min(delay * 2.0, self.max_backoff)
                continue
            self.reconnects += 1
            LOG.info("reconnected to %s", self.description)
            return True
        self.end_reason = "source lost"
        self.error = "{} was lost and {} reconnect attempts failed".format(
            self.description, self.reconnect_attempts)
        LOG.error("%s: stopping", self.error)
        return False

    def _deliver(self, frame):
        with self._cond:
            self.captured += 1
            if self.live:
                if self._frames:
                    self.dropped += len(self._frames)
                self._frames = [frame]
            else:
                while len(self._frames) >= self.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
                self._frames.append(frame)
            self._cond.notify_all()


# -- open_source: URI -> stream -------------------------------------------------------------
def _image_paths(pattern):
    return sorted(p for p in glob.glob(pattern)
                  if os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS)


def make_reader(uri, width=1280, height=720, fps=30, flip=0, latency=200):
    """The :class:`Reader` for ``uri``; one-line error listing the accepted forms."""
    text = str(uri).strip()
    lower = text.lower()
    if lower.startswith("csi://"):
        sensor = text[len("csi://"):]
        if not sensor.isdigit():
            raise NanosegError("CSI source {!r} needs a sensor number, like csi://0".format(uri))
        pipeline = csi_pipeline(int(sensor), width, height, fps, flip)
        return CaptureReader(text, lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER),
                             live=True)
    if lower.startswith("v4l2://") or text.isdigit():
        device = int(text) if text.isdigit() else text[len("v4l2://"):]
        return CaptureReader(text, lambda: cv2.VideoCapture(device, cv2.CAP_V4L2), live=True,
                             size=(width, height), fps=fps)
    if lower.startswith(("rtsp://", "rtsps://")):
        return _rtsp_reader(text, latency)
    if any(ch in text for ch in "*?["):
        paths = _image_paths(text)
        if not paths:
            raise NanosegError("the glob {!r} matches no images ({})".format(
                text, " ".join(IMAGE_EXTENSIONS)))
        return ImageListReader(paths, "{} ({} images)".format(text, len(paths)))
    if os.path.isdir(text):
        paths = _image_paths(os.path.join(text, "*"))
        if not paths:
            raise NanosegError("the folder {} holds no images ({})".format(
                text, " ".join(IMAGE_EXTENSIONS)))
        return ImageListReader(paths, "{} ({} images)".format(text, len(paths)))
    if os.path.isfile(text):
        ext = os.path.splitext(text)[1].lower()
        if ext in IMAGE_EXTENSIONS:
            return ImageListReader([text], text)
        return CaptureReader(text, lambda: cv2.VideoCapture(text, cv2.CAP_FFMPEG), live=False)
    raise NanosegError("unknown --source {!r}: use one of {}".format(
        redact_uri(text), "; ".join(ACCEPTED_FORMS)))


def _rtsp_reader(uri, latency):
    """RTSP through GStreamer when OpenCV has it (latency honoured), else FFmpeg over TCP."""
    safe = redact_uri(uri)
    if opencv_has_gstreamer():
        pipeline = rtsp_pipeline(uri, latency, jetson=is_jetson())
        return CaptureReader(safe, lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER),
                             live=True)
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    return CaptureReader(safe, lambda: cv2.VideoCapture(uri, cv2.CAP_FFMPEG), live=True)


def open_source(uri, width=1280, height=720, fps=30, flip=0, latency=200, loop=False,
                reconnect_attempts=5, backoff=0.5):
    """A started :class:`SourceStream` for ``uri`` (see ACCEPTED_FORMS).

    ``width``/``height``/``fps``/``flip`` configure cameras (CSI: the GStreamer caps and
    nvvidconv flip-method), ``latency`` (ms) the RTSP jitter buffer, ``loop`` replays a file
    or folder forever (benchmarks, demos).
    """
    reader = make_reader(uri, width, height, fps, flip, latency)
    stream = SourceStream(reader, loop=loop, reconnect_attempts=reconnect_attempts,
                          backoff=backoff)
    return stream.start()
