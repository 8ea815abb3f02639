"""Frame sources behind one abstraction: CSI and USB cameras, RTSP, video files, image folders.

:func:`open_source` turns a URI into a :class:`SourceStream`: a reader (how to get one BGR
frame) driven by a capture thread. Live sources keep only the latest frame (a slow consumer
sees fresh frames; the stale ones are dropped and counted) and reconnect with exponential
back-off when the camera is lost; files and folders deliver every frame in order (exact
counts) and end cleanly. A live read() that blocks (an RTSP or CSI stream that stalls without
an end-of-stream) is caught by a watchdog: no frame for ``stall_timeout`` seconds counts as a
lost camera. Python 3.6 + numpy + JetPack's OpenCV 4.1.1 only.
"""
import glob
import logging
import os
import threading
import time

from urllib.parse import unquote, urlsplit, urlunsplit

import cv2

from edge import rtsp_probe
from nanoseg.files import sample_name
from nanoseg.preprocess import IMAGE_READ_FLAGS
from nanoseg.errors import NanosegError
from edge.gst import gst_quote

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264")
ACCEPTED_FORMS = ("csi://N (Jetson CSI camera N)", "v4l2:///dev/videoN or a device index "
                  "like 0 (USB camera)", "rtsp://[user:pass@]host[:port]/path",
                  "a video file ({})".format(" ".join(VIDEO_EXTENSIONS)),
                  "an image folder", "an image glob like 'frames/*.png'")
# nvvidconv flip-method: 0 none, 1 counterclockwise 90, 2 rotate 180, 3 clockwise 90,
# 4 horizontal flip, 5 upper-right diagonal, 6 vertical flip, 7 upper-left diagonal.
FLIP_METHODS = range(8)
TRANSPOSING_FLIPS = (1, 3, 5, 7)  # the 90-degree rotations and both diagonals swap W and H
RTSP_CODECS = ("h264", "h265")
JETSON_RELEASE_FILE = "/etc/nv_tegra_release"
STALL_TIMEOUT = 5.0  # s without a frame from a live source = lost (its read() may never return)
READ_RETURN_WAIT = 1.0  # s stop() waits for a running read (one frame of a >= 1 fps stream)
HEALTHY_FRAMES = 10  # frames after a (re)open that make a later loss a fresh one (full budget)
SECRET_QUERY_KEYS = ("pass", "pwd", "secret", "token", "auth", "key")


# -- URIs and pipeline strings (pure functions) --------------------------------------------
def redact_uri(uri):
    """``uri`` with any user name and password replaced by ``***``: safe to log or print.

    Everything before the last ``@`` of the address is hidden (also a password that holds an
    unencoded ``/`` or ``@``), and so are query values like ``password=...``.
    """
    text = str(uri)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    if "@" in rest:
        rest = "***:***@" + rest.rpartition("@")[2]
    head, qmark, query = rest.partition("?")
    if qmark:
        fields = []
        for field in query.split("&"):
            key, equals, _ = field.partition("=")
            if equals and any(word in key.lower() for word in SECRET_QUERY_KEYS):
                field = key + "=***"
            fields.append(field)
        rest = head + "?" + "&".join(fields)
    return scheme + "://" + rest


def split_credentials(uri):
    """(``uri`` without ``user:password@``, user or None, password or None), percent-decoded.

    Percent-encode ``@ / : ? #`` inside a password (``%40`` ...): the URI is parsed by the
    standard rules.
    """
    parts = urlsplit(str(uri))
    if "@" not in parts.netloc:
        return str(uri), None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user) or None, unquote(password) if colon else None


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


def rtsp_pipeline(uri, latency=200, jetson=False, codec="h264"):
    """A GStreamer pipeline for an H.264/H.265 RTSP stream (hardware decoder on a Jetson).

    Credentials go to rtspsrc's ``user-id``/``user-pw`` and every value is quoted, so a
    password with spaces, quotes or ``!`` cannot break the pipeline. The string holds the
    password: never log it.
    """
    codec = str(codec).lower()
    if codec not in RTSP_CODECS:
        raise NanosegError("--rtsp-codec must be one of {}, got {!r}".format(
            " ".join(RTSP_CODECS), codec))
    location, user, password = split_credentials(uri)
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


def opencv_build_flag(name, build_information=None):
    """Whether cv2.getBuildInformation() lists ``name`` (e.g. "GStreamer") as built in.

    True for ``YES ...`` or a path, False for ``NO``, None when the line is absent.
    """
    text = cv2.getBuildInformation() if build_information is None else build_information
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip().lower() == name.lower():
            return not value.strip().upper().startswith("NO")
    return None


def opencv_has_gstreamer():
    """True when this OpenCV build can open GStreamer pipelines (JetPack's can)."""
    return bool(opencv_build_flag("GStreamer"))


def is_jetson():
    """True on a Jetson (L4T): pick the hardware decoder there."""
    return os.path.isfile(JETSON_RELEASE_FILE)


def _no_gstreamer_message(description, what):
    return ("cannot open {}: this OpenCV {} was built without GStreamer (cv2.getBuildInformation"
            "() says GStreamer: NO), which {} needs: use JetPack's OpenCV, not a pip "
            "opencv-python (python3 jetson/check_platform.py --check gstreamer)".format(
                description, cv2.__version__, what))


def _release(resource, description):
    """release()/close() a capture or connection, logging (not raising) a failure."""
    closer = getattr(resource, "release", None) or getattr(resource, "close", None)
    if closer is None:
        return
    try:
        closer()
    except Exception as exc:  # a broken driver must not take the shutdown with it
        LOG.warning("releasing %s failed: %r", description, exc)


# -- readers: one frame at a time ----------------------------------------------------------
class Reader(object):
    """How to get frames from one kind of source; the stream drives it from its thread.

    ``open()`` raises NanosegError when the source cannot be opened; ``read()`` returns
    ``(name, bgr_uint8)`` or None at the end of the source (or when a live camera fails).
    A reader whose ``read()`` can block forever implements ``detach()``: hand over the
    current connection (something with ``release()`` or ``close()``) and forget it, so the
    stream can reopen while the stuck ``read()`` still holds the old one.
    """

    live = False
    description = "source"
    fps = None

    def open(self):
        raise NotImplementedError

    def read(self):
        raise NotImplementedError

    def detach(self):
        return None

    def close(self):
        pass


class CaptureReader(Reader):
    """A cv2.VideoCapture opened by ``opener`` (files, cameras, RTSP, GStreamer pipelines).

    ``explain()`` (optional) says why an open failed when OpenCV cannot (e.g. the RTSP
    probe's "wrong password"); None keeps the generic message.
    """

    def __init__(self, description, opener, live, size=None, fps=None, explain=None):
        self.description = description
        self._opener = opener
        self._explain = explain
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
            _release(capture, self.description)
            reason = self._explain() if self._explain is not None else None
            raise NanosegError("cannot open {}: {}".format(self.description, reason or (
                "OpenCV could not open it (check the device, address or file, and that it is "
                "not in use)")))
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
        capture = self._capture  # a detach() during this read leaves it to this call
        if capture is None:
            return None
        ok, frame = capture.read()
        if not ok or frame is None:
            return None
        self._count += 1
        return "frame{:06d}".format(self._count - 1), frame

    def detach(self):
        capture, self._capture = self._capture, None
        return capture

    def close(self):
        capture, self._capture = self._capture, None
        if capture is not None:
            _release(capture, self.description)


class ImageListReader(Reader):
    """Images from a sorted list of paths, each read as BGR.

    ``names`` (one per path) name the frames; by default each file's stem. A folder source
    passes relative paths without extension ("day1/cam/x"), so saved masks keep them.
    """

    def __init__(self, paths, description, names=None):
        self.paths = list(paths)
        self.description = description
        if names is None:
            names = [os.path.splitext(os.path.basename(p))[0] for p in self.paths]
        self.names = list(names)
        if len(self.names) != len(self.paths):
            raise ValueError("ImageListReader needs one name per path")
        self._next = 0

    def open(self):
        self._next = 0

    def read(self):
        if self._next >= len(self.paths):
            return None
        path = self.paths[self._next]
        self._next += 1
        frame = cv2.imread(path, IMAGE_READ_FLAGS)   # as training's readers decode files
        if frame is None:
            raise NanosegError("cannot read image {}: not an image OpenCV can decode (remove "
                               "it from the folder)".format(path))
        return self.names[self._next - 1], frame


# -- the stream: a capture thread in front of a reader -------------------------------------
class Frame(object):
    """One captured frame: its index in the stream, a name, the BGR image, capture time.

    ``time`` is time.monotonic() (a Jetson has no RTC: the wall clock jumps at NTP sync).
    """

    __slots__ = ("index", "name", "image", "time")

    def __init__(self, index, name, image, when):
        self.index = index
        self.name = name
        self.image = image
        self.time = when


_STALLED = object()
_STOPPED = object()


class _ReadWorker(object):
    """``read()`` on a helper thread, so a read that never returns can be walked away from.

    The capture thread asks for one read at a time and waits at most the stall timeout. A
    stalled worker is abandoned with a ``cleanup`` (release the connection it reads from)
    that runs on the worker once its read finally returns: nothing is released under a
    running read().
    """

    def __init__(self, read, name="capture-read"):
        self._read = read
        self._cond = threading.Condition()
        self._requested = False
        self._running = False
        self._result = None
        self._abandoned = False
        self._cleanup = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def read(self, timeout, stop):
        """The read's result, ``_STALLED`` after ``timeout`` s, ``_STOPPED`` once ``stop``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._requested = True
            self._result = None
            self._cond.notify_all()
            while self._result is None:
                if stop.is_set():
                    return _STOPPED
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _STALLED
                self._cond.wait(min(remaining, 0.1))
            kind, value = self._result
            self._result = None
        if kind == "error":
            raise value
        return value

    def abandon(self, cleanup=None):
        """Retire the worker. True: a read is running or pending and ``cleanup`` will run
        after it; False: the worker was idle (``cleanup`` is the caller's to run)."""
        with self._cond:
            pending = self._running or self._requested
            self._abandoned = True
            self._cleanup = cleanup if pending else None
            self._cond.notify_all()
            return pending

    def join(self, timeout):
        """Wait up to ``timeout`` s for the worker's thread to end; True when it has.

        A process must not exit while this thread is inside OpenCV's read(): the
        interpreter stops daemon threads by unwinding their C++ frames, and OpenCV's
        bindings abort the process on that ("FATAL: exception not rethrown").
        """
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    def _run(self):
        while True:
            with self._cond:
                while not self._requested and not self._abandoned:
                    self._cond.wait()
                if self._abandoned:
                    break
                self._requested = False
                self._running = True
            try:
                result = ("item", self._read())
            except Exception as exc:  # handed to the capture thread, which decides
                result = ("error", exc)
            with self._cond:
                self._running = False
                if self._abandoned:
                    break
                self._result = result
                self._cond.notify_all()
        with self._cond:
            cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            cleanup()


class SourceStream(object):
    """Runs a :class:`Reader` on its own thread and hands frames to one consumer.

    Live readers: a one-slot mailbox (latest frame wins; overwritten frames are counted in
    ``dropped``), a stall watchdog (no frame within ``stall_timeout`` s = lost; 0 turns it
    off) and reconnection with back-off ``backoff * 2**k`` (at most ``max_backoff``) for
    ``reconnect_attempts`` tries. The budget and the back-off only start afresh once a
    connection delivered ``healthy_frames`` frames: a camera that opens but never delivers
    ends the run instead of reconnecting forever. Files/folders: a bounded queue the thread
    blocks on, so no frame is ever lost. ``wait(seconds) -> stopped`` is the back-off sleep
    (tests inject one).
    """

    def __init__(self, reader, loop=False, reconnect_attempts=5, backoff=0.5,
                 max_backoff=8.0, queue_size=4, stall_timeout=STALL_TIMEOUT,
                 healthy_frames=HEALTHY_FRAMES, wait=None):
        self.reader = reader
        self.loop = loop
        self.reconnect_attempts = int(reconnect_attempts)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.queue_size = int(queue_size)
        self.stall_timeout = float(stall_timeout or 0.0)
        self.healthy_frames = max(int(healthy_frames), 1)
        self.captured = 0
        self.dropped = 0
        self.reconnects = 0
        self.stalls = 0
        self.end_reason = None
        self.error = None
        self._frames = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._done = False
        self._thread = None
        self._worker = None
        self._retired = []  # abandoned read workers: stop() waits for their reads to return
        self._attempt = 0  # reconnect attempts since frames last flowed
        self._delay = self.backoff
        self._since_open = 0  # frames delivered since the last (re)open

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
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._frames and not self._done:
                remaining = None if deadline is None else deadline - time.monotonic()
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

    def stop(self, timeout=5.0):
        """Stop capturing (safe to call twice); the capture thread releases the source.

        A capture thread stuck in a blocking open() is left to finish on its own (it is a
        daemon and releases the source when that call returns): nothing is released under
        a running OpenCV call.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            self._close_reader()  # opened by start() but never captured
            return
        if thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            LOG.warning("capture from %s did not stop within %.0f s (blocked in OpenCV): "
                        "leaving it to end on its own", self.description, timeout)
        elif not self._join_retired(time.monotonic() + min(timeout, READ_RETURN_WAIT)):
            LOG.warning("a read from %s is still blocked in OpenCV: it ends on its own when "
                        "the source delivers or closes", self.description)

    def _join_retired(self, deadline):
        """Wait (until ``deadline``) for abandoned read workers; True when all ended."""
        ended = True
        for worker in list(self._retired):
            ended = worker.join(deadline - time.monotonic()) and ended
        return ended

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
            self._release_reader()
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
            self._deliver(Frame(index, name, image, time.monotonic()))
            index += 1
        self.end_reason = "stopped"

    def _read_safely(self):
        """A frame, or None when the reader ends, stalls or a live reader fails (logged)."""
        try:
            if self.live and self.stall_timeout > 0:
                return self._read_watched()
            return self.reader.read()
        except (NanosegError, cv2.error, OSError) as exc:
            if not self.live:
                raise
            LOG.warning("reading %s failed: %s", self.description,
                        str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
            return None

    def _read_watched(self):
        """reader.read() through the worker; a read that outlasts stall_timeout = lost."""
        if self._worker is None:
            self._worker = _ReadWorker(self.reader.read)
        item = self._worker.read(self.stall_timeout, self._stop)
        if item is _STOPPED:
            return None
        if item is _STALLED:
            self.stalls += 1
            LOG.warning("no frame from %s for %.1f s: treating it as lost", self.description,
                        self.stall_timeout)
            self._abandon_worker()
            return None
        return item

    def _abandon_worker(self):
        """After a stall: detach the connection the stuck read holds and walk away."""
        worker, self._worker = self._worker, None
        self._hand_over(worker, self.reader.detach())

    def _hand_over(self, worker, leftover):
        """Abandon ``worker``; ``leftover`` (its connection) is released after its read."""
        cleanup = None
        if leftover is not None:
            description = self.description

            def cleanup():
                _release(leftover, description)
        if not worker.abandon(cleanup) and cleanup is not None:
            cleanup()
        self._retire(worker)

    def _retire(self, worker):
        """Keep ``worker`` for stop() to wait on; forget the ones that already ended."""
        self._retired = [w for w in self._retired if not w.join(0)] + [worker]

    def _release_reader(self):
        """At the end of the capture thread: close the reader, never under a running read."""
        worker, self._worker = self._worker, None
        if worker is not None:
            leftover = self.reader.detach()
            if leftover is None:  # a reader without detach(): close it after its read
                if worker.abandon(self._close_reader):
                    LOG.warning("%s is still inside read(): it is closed when that returns",
                                self.description)
                else:
                    self._close_reader()
                self._retire(worker)
                return
            self._hand_over(worker, leftover)
        self._close_reader()

    def _close_reader(self):
        try:
            self.reader.close()
        except Exception as exc:
            LOG.warning("closing %s failed: %r", self.description, exc)

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
        """Reopen a lost live source with exponential back-off; False when it stays lost.

        Attempts and back-off carry over between losses unless the connection delivered
        ``healthy_frames`` frames since it was opened.
        """
        if self._since_open >= self.healthy_frames:
            self._attempt = 0
            self._delay = self.backoff
        self._close_reader()
        while self._attempt < self.reconnect_attempts:
            self._attempt += 1
            delay = self._delay
            self._delay = min(self._delay * 2.0, self.max_backoff)
            LOG.warning("lost %s: reconnect attempt %d/%d in %.1f s", self.description,
                        self._attempt, self.reconnect_attempts, delay)
            if self._wait(delay):
                self.end_reason = "stopped"
                return False
            try:
                self.reader.open()
            except NanosegError as exc:
                LOG.warning("reconnect %d/%d failed: %s", self._attempt,
                            self.reconnect_attempts, exc)
                continue
            self.reconnects += 1
            self._since_open = 0
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
            self._since_open += 1
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
def _is_image_path(path):
    """Image files by extension; hidden files (.DS_Store, ._x.jpg) are never frames."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _image_paths(pattern):
    """The images a glob matches, sorted by path."""
    return sorted(p for p in glob.glob(pattern) if _is_image_path(p))


def _folder_images(folder):
    """(paths, names) of every image under ``folder``, nested folders included.

    Names are :func:`nanoseg.files.sample_name` (relative path without extension, "/" on
    every system) and the order is theirs as plain strings: the key and the order training's
    readers pair a nested folder by ("a-b/x" before "a/x"). Hidden folders are skipped.
    """
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = os.path.join(current, name)
            if _is_image_path(path):
                found.append((sample_name(path, folder), path))
    found.sort()
    return [path for _, path in found], [name for name, _ in found]


def make_reader(uri, width=1280, height=720, fps=30, flip=0, latency=200, rtsp_codec="h264"):
    """The :class:`Reader` for ``uri``; one-line error listing the accepted forms."""
    text = str(uri).strip()
    lower = text.lower()
    if lower.startswith("csi://"):
        sensor = text[len("csi://"):]
        if not sensor.isdigit():
            raise NanosegError("CSI source {!r} needs a sensor number, like csi://0".format(uri))
        return CaptureReader(text, _csi_opener(text, csi_pipeline(int(sensor), width, height,
                                                                  fps, flip)), live=True)
    if lower.startswith("v4l2://") or text.isdigit():
        device = int(text) if text.isdigit() else text[len("v4l2://"):]
        return CaptureReader(text, _v4l2_opener(device), live=True, size=(width, height),
                             fps=fps)
    if lower.startswith(("rtsp://", "rtsps://")):
        return _rtsp_reader(text, latency, rtsp_codec)
    if any(ch in text for ch in "*?["):
        paths = _image_paths(text)
        if not paths:
            raise NanosegError("the glob {!r} matches no images ({})".format(
                text, " ".join(IMAGE_EXTENSIONS)))
        return ImageListReader(paths, "{} ({} images)".format(text, len(paths)))
    if os.path.isdir(text):
        paths, names = _folder_images(text)
        if not paths:
            raise NanosegError("the folder {} holds no images, nor do its sub-folders: point "
                               "--source at a folder of .jpg/.png files".format(text))
        return ImageListReader(paths, "{} ({} images)".format(text, len(paths)), names)
    if os.path.isfile(text):
        ext = os.path.splitext(text)[1].lower()
        if ext in IMAGE_EXTENSIONS:
            return ImageListReader([text], text)
        return CaptureReader(text, _file_opener(text), live=False)
    raise NanosegError("unknown --source {!r}: use one of {}".format(
        redact_uri(text), "; ".join(ACCEPTED_FORMS)))


def _csi_opener(description, pipeline):
    """The CSI pipeline through GStreamer, or a message saying this OpenCV has none."""
    def open_csi():
        if not opencv_has_gstreamer():
            raise NanosegError(_no_gstreamer_message(description, "a CSI camera"))
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    return open_csi


def _v4l2_opener(device):
    """V4L2 when this OpenCV has it (Linux), else whatever backend OpenCV picks."""
    def open_v4l2():
        api = cv2.CAP_ANY if opencv_build_flag("v4l/v4l2") is False else cv2.CAP_V4L2
        return cv2.VideoCapture(device, api)
    return open_v4l2


def _file_opener(path):
    """FFmpeg when this OpenCV has it, else (or when FFmpeg cannot) any backend: on a Jetson
    whose OpenCV has GStreamer but no FFmpeg, GStreamer decodes the file."""
    def open_file():
        capture = None
        if opencv_build_flag("FFMPEG") is not False:
            capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if capture is None or not capture.isOpened():
            capture = cv2.VideoCapture(path, cv2.CAP_ANY)
        return capture
    return open_file


def _rtsp_reader(uri, latency, codec="h264"):
    """RTSP through GStreamer when OpenCV has it (latency, codec honoured), else FFmpeg.

    Every open first asks the camera (edge.rtsp_probe.refusal): no server, a rejected
    password or a wrong path fail in one line saying so and never reach OpenCV, whose
    GStreamer backend can wait forever on a refused stream; any other answer goes on to
    OpenCV (the probe's words explain a failure there). Never CAP_ANY: OpenCV 4.1's
    image-sequence backend prints the name it was given, and this one holds the password.
    FFmpeg options (OPENCV_FFMPEG_CAPTURE_OPTIONS, e.g. TCP transport)
    come from the environment, which the CLI sets: a library does not touch os.environ.
    """
    safe = redact_uri(uri)
    location, user, password = split_credentials(uri)

    def explain():
        return rtsp_probe.explain_failure(location, user, password, shown=safe)

    def check_camera():
        """Ask the camera first: OpenCV may hang forever opening a stream it refuses."""
        reason = rtsp_probe.refusal(location, user, password, shown=safe)
        if reason is not None:
            raise NanosegError("cannot open {}: {}".format(safe, reason))
    if opencv_has_gstreamer():
        pipeline = rtsp_pipeline(uri, latency, jetson=is_jetson(), codec=codec)

        def open_gstreamer():
            check_camera()
            return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        return CaptureReader(safe, open_gstreamer, live=True, explain=explain)
    rtsp_pipeline(uri, latency, codec=codec)  # the same option checks on every build

    def open_ffmpeg():
        if opencv_build_flag("FFMPEG") is False:
            raise NanosegError("cannot open {}: this OpenCV {} has neither GStreamer nor FFmpeg"
                               " for RTSP: use JetPack's OpenCV on the Jetson".format(
                                   safe, cv2.__version__))
        check_camera()
        return cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
    LOG.info("OpenCV has no GStreamer: %s through FFmpeg (--latency and --rtsp-codec do not "
             "apply)", safe)
    return CaptureReader(safe, open_ffmpeg, live=True, explain=explain)


def open_source(uri, width=1280, height=720, fps=30, flip=0, latency=200, loop=False,
                reconnect_attempts=5, backoff=0.5, stall_timeout=STALL_TIMEOUT,
                rtsp_codec="h264"):
    """A started :class:`SourceStream` for ``uri`` (see ACCEPTED_FORMS).

    ``width``/``height``/``fps``/``flip`` configure cameras (CSI: the GStreamer caps and
    nvvidconv flip-method), ``latency`` (ms) and ``rtsp_codec`` the RTSP stream, ``loop``
    replays a file or folder forever (benchmarks, demos), ``stall_timeout`` (s, live sources,
    0 = off) is how long without a frame counts as a lost camera.
    """
    reader = make_reader(uri, width, height, fps, flip, latency, rtsp_codec)
    stream = SourceStream(reader, loop=loop, reconnect_attempts=reconnect_attempts,
                          backoff=backoff, stall_timeout=stall_timeout)
    return stream.start()
