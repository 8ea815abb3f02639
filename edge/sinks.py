"""Where results go: a window, an mp4, mask PNGs, the MJPEG viewer.

Every sink has ``write(result)`` and ``close()`` and declares ``delivery`` (see
edge/delivery.py): ``"inline"`` sinks are called on the runtime's render thread, ``"every"``
and ``"latest"`` ones on a worker of their own. ``close()`` is always called (also on Ctrl-C /
SIGTERM, after the worker's queue is drained), which is what finalizes the mp4. A
:class:`Result` carries the BGR frame, the label map (at the model's size, and at the frame's
size when a sink asks for it) and, when some sink needs it, the rendered overlay.
"""
import logging
import os
import sys
import time

import cv2

from edge.pacing import FramePacer
from edge.recording import kept_frames, not_finalized
from nanoseg import platform_info
from nanoseg.preprocess import labels_to_frame
from nanoseg.errors import NanosegError
from nanoseg.files import check_writable, write_bytes_atomic

LOG = logging.getLogger(__name__)
QUIT_KEYS = (ord("q"), 27)  # q or Esc in the window
# codecs tried in order per container: mp4v is FFmpeg's (pip OpenCV); H.264 ("avc1") is what
# an OpenCV without FFmpeg's MPEG-4 encoder (GStreamer) may offer instead
FOURCCS = {".mp4": ("mp4v", "avc1"), ".m4v": ("mp4v", "avc1"), ".mov": ("mp4v", "avc1"),
           ".avi": ("MJPG", "XVID", "mp4v"), ".mkv": ("mp4v", "MJPG")}
DEFAULT_FOURCCS = ("mp4v", "MJPG")


class Result(object):
    """One processed frame handed from the inference stage to the sinks.

    ``source`` is the index of the ``--source`` it came from. ``small_labels`` is the
    model-size label map the inference thread made; ``labels`` the frame-size one, upscaled
    (nearest neighbour) on first use by the sink that reads it, so the 720p resize stays off
    the inference thread and is skipped when nobody needs it. ``probabilities`` (the model's
    output, a copy) is there only when a sink declares ``needs_probabilities``
    (edge/collect.py); ``time`` is the capture time (live recordings are paced by it).
    """

    __slots__ = ("index", "name", "frame", "small_labels", "_labels", "rendered",
                 "probabilities", "time", "source", "info")

    def __init__(self, index, name, frame, labels=None, small_labels=None,
                 probabilities=None, time=None, source=0):
        if labels is None and small_labels is None:
            raise ValueError("a Result needs labels or small_labels")
        self.source = source  # which --source (edge/multisource.py), 0 with one
        self.info = None  # the frame's statistics (edge/stats.py frame_info), when made
        self.index = index
        self.name = name
        self.frame = frame
        self._labels = labels
        self.small_labels = labels if small_labels is None else small_labels
        self.rendered = None
        self.probabilities = probabilities  # model-size output, kept only when a sink asks
        self.time = time  # capture time (monotonic s): what paces a live recording

    @property
    def labels(self):
        """The label map at the frame's size (uint8 H x W)."""
        if self._labels is None:
            self._labels = labels_to_frame(self.small_labels, self.frame.shape)
        return self._labels


class Sink(object):
    """``needs_render``: True when the sink shows the overlay (so it is drawn once).

    ``delivery``: ``"inline"`` (cheap: called on the render thread), ``"every"`` (own
    worker, every frame, the producer waits when it falls behind) or ``"latest"`` (own
    worker, the newest frame only). A subclass only declares it; the runtime wraps it.
    """

    needs_render = False
    needs_probabilities = False  # True: Result.probabilities is filled (a copy per frame)
    delivery = "inline"

    def write(self, result):
        raise NotImplementedError

    def close(self):
        pass

    @property
    def wants_stop(self):
        """True when the user asked this sink to stop the run (window: q / Esc)."""
        return False


def check_output_folder(path, flag):
    """A one-line error naming ``flag`` unless the file ``path`` can be written (its folder
    exists and takes a new file): before a writer blames its encoders for it."""
    check_writable(path, flag)


def fit_frame(image, size):
    """``image`` resized to ``size`` (w, h): a writer keeps the size it was opened with, so a
    source that changes resolution mid-run must not break the file."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class WriterSink(Sink):
    """The rendered overlay into a ``cv2.VideoWriter`` that :meth:`_open` makes at the first
    frame's size (and records in ``_size``); later frames are fitted to it. Every frame
    reaches it (``delivery = "every"``): a video with holes is worse than a slower run.
    ``close()`` releases the writer, which finalizes a file (an mp4's index, a GStreamer
    EOS). A file writer names its file in ``recording`` (and its option in ``flag``): after
    the release the file is read back, and one that keeps fewer frames than were written is
    an error, never "saved" (a full disk). ``realtime`` (live sources): frames are placed at
    their capture times on the writer's constant-rate grid, the previous frame held in
    between (edge/pacing.py), so the recording plays in real time."""

    needs_render = True
    delivery = "every"
    recording = None
    flag = None

    def __init__(self, fps, realtime=False):
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames = 0
        self.kept = None
        self.pacer = FramePacer(self.fps) if realtime else None
        self._size = None
        self._writer = None
        self._last = None

    def write(self, result):
        image = result.rendered
        if self._writer is None:
            self._writer = self._open(image.shape[1], image.shape[0])
        if self.pacer is not None:
            for _ in range(self.pacer.held_copies(result.time)):
                self._writer.write(self._last)
        self._last = fit_frame(image, self._size)
        self._writer.write(self._last)
        self.frames += 1

    @property
    def repeated(self):
        """Copies written to hold a frame until the next one's capture time."""
        return self.pacer.repeated if self.pacer is not None else 0

    def _open(self, width, height):
        raise NotImplementedError

    def _closed_message(self):
        """The log line once the writer is released."""
        raise NotImplementedError

    def close(self):
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            if self.recording:
                written = self.frames + self.repeated  # held copies are in the file too
                self.kept = kept_frames(self.recording, written)
                if self.kept is None:  # this OpenCV cannot decode it: say so, keep going
                    LOG.warning("%s %s: this OpenCV cannot decode it to check the %d frames "
                                "written (not verified)", self.flag, self.recording, written)
                elif self.kept < written:
                    raise NanosegError(not_finalized(self.flag, self.recording, self.kept,
                                                     written))
            LOG.info("%s", self._closed_message())

    def counts(self):
        """For the run summary: the frames the file plays back (once closed)."""
        return {"kept": self.kept} if self.recording else {}


def held_note(sink):
    """``, 40 copies held for real time`` (or nothing) for a writer's closing log line."""
    return ", {} copies held for real time".format(sink.repeated) if sink.repeated else ""


class VideoSink(WriterSink):
    """The rendered overlay as a video file, opened at the first frame's size.

    The codec is the first of ``fourccs`` (default: by extension, mp4v for .mp4) this
    OpenCV can write; the others are fallbacks.
    """

    def __init__(self, path, fps=30.0, fourccs=None, flag="--save-video", realtime=False):
        WriterSink.__init__(self, fps, realtime)
        self.path = self.recording = path
        self.flag = flag  # the option the user gave: errors name it
        ext = os.path.splitext(path)[1].lower()
        self.fourccs = tuple(fourccs or FOURCCS.get(ext, DEFAULT_FOURCCS))
        self.fourcc = None
        check_output_folder(path, flag)

    def _open(self, width, height):
        for fourcc in self.fourccs:
            writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*fourcc), self.fps,
                                     (width, height))
            if writer.isOpened():
                break
            writer.release()
            LOG.info("OpenCV cannot write %s as %s, trying the next codec", self.path, fourcc)
        else:
            raise NanosegError("cannot write {} {}: OpenCV has none of the encoders "
                               "{} for it, or the path is not writable (try a .avi)".format(
                                   self.flag, self.path, "/".join(self.fourccs)))
        self._size = (width, height)
        self.fourcc = fourcc
        LOG.info("writing %s (%s, %dx%d, %.1f fps)", self.path, fourcc, width, height, self.fps)
        return writer

    def _closed_message(self):
        return "saved {} ({} frames{})".format(self.path, self.frames, held_note(self))


class MaskSink(Sink):
    """One PNG of label ids per frame: ``<index>_<source name>.png`` in ``folder``.

    A name with a relative path (a nested image folder's "day1/x") keeps it: the PNG goes
    to ``folder/day1/<index>_x.png``, sub-folders created as needed.
    """

    delivery = "every"

    def __init__(self, folder):
        self.folder = folder
        check_writable(folder, "--save-masks", folder=True)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise NanosegError("cannot create --save-masks folder {}: {}".format(folder, exc))
        self.written = 0
        self._folders = set([os.path.abspath(folder)])  # made already: no mkdir per frame

    def write(self, result):
        path = os.path.join(self.folder, mask_filename(result.index, result.name))
        parent = os.path.abspath(os.path.dirname(path))
        if parent not in self._folders:
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise NanosegError("cannot create mask folder {}: {}".format(parent, exc))
            self._folders.add(parent)
        ok, png = cv2.imencode(".png", result.labels)
        if not ok:
            raise NanosegError("cannot encode mask {} as PNG".format(path))
        try:  # cv2.imwrite leaves a 0-byte file on a full disk; this leaves none
            write_bytes_atomic(path, png, sync=False)  # fsync per frame would pace the loop
        except (IOError, OSError) as exc:
            raise NanosegError("cannot write --save-masks {}: {}: free space or pick another "
                               "folder".format(path, exc.strerror or exc))
        self.written += 1


def mask_filename(index, name):
    """``000012_name.png``: sortable by frame index, traceable to the source file.

    ``name`` may hold a relative path ("day1/x" -> ``day1/000012_x.png``, with the system's
    separator); empty, "." and ".." parts are dropped so a mask never lands outside the
    mask folder.
    """
    parts = [p for p in str(name).replace("\\", "/").split("/") if p not in ("", ".", "..")]
    parts = parts or ["frame"]
    parts[-1] = "{:06d}_{}.png".format(int(index), parts[-1])
    return os.path.join(*parts)


def window_unavailable_reason(environ=None, platform=None):
    """Why no OpenCV window can open here (one phrase), or None when it can."""
    if not platform_info.opencv_has_gui():
        return "this OpenCV {} is a headless build".format(cv2.__version__)
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY is not set)"
    return None


class WindowSink(Sink):
    """An OpenCV window with the overlay; q or Esc stops the run.

    The window is created at the first frame and destroyed in ``close()``, both on the
    window's own worker thread (delivery "latest": it shows the newest frame): HighGUI
    wants every call of a window on one thread. With several sources (``source_names``)
    each has its own window, all on that one thread.
    """

    needs_render = True
    delivery = "latest"

    def __init__(self, title="nanoseg", source_names=()):
        self.title = title
        self.source_names = list(source_names)
        self._titles = set()
        self._quit = False
        self._shown = False
        reason = window_unavailable_reason()
        if reason:
            raise NanosegError("cannot open a window: {}: use --headless, optionally with "
                               "--view-port 8080".format(reason))

    def write(self, result):
        title = self.window_title(result)
        if title not in self._titles:
            try:
                cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            except cv2.error as exc:
                raise NanosegError("cannot open a window ({}): use --headless, optionally "
                                   "with --view-port 8080".format(
                                       str(exc).strip().splitlines()[-1]))
            self._titles.add(title)
            self._shown = True
        cv2.imshow(title, result.rendered)
        if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
            self._quit = True

    def window_title(self, result):
        """One window per source: the title, then the source's name when there are several."""
        if len(self.source_names) < 2:
            return self.title
        return "{}: {}".format(self.title, self.source_names[result.source])

    @property
    def wants_stop(self):
        return self._quit

    def close(self):
        if not self._shown:
            return
        self._shown = False
        try:
            for title in sorted(self._titles):
                cv2.destroyWindow(title)
            self._titles = set()
            cv2.waitKey(1)  # let HighGUI process the destroy event
        except cv2.error:
            pass


class ViewerSink(Sink):
    """JPEG-encodes the overlay for the MJPEG viewer (edge/viewer/), per source.

    Only while a client is connected (nobody watching: no overlay drawn for it, no JPEG)
    and at most ``max_fps`` per second per source (0: every frame it gets), on its own
    worker that takes each source's newest frame in turn.
    """

    delivery = "latest"

    def __init__(self, viewer, quality=80, max_fps=15.0):
        self.viewer = viewer
        self.params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
        self.interval = 1.0 / max_fps if max_fps and max_fps > 0 else 0.0
        self.encoded = 0
        self.unwatched = 0
        self.rate_limited = 0
        self._next = {}  # per source: when its next JPEG is due

    @property
    def needs_render(self):
        return self.viewer.watching

    def write(self, result):
        source = result.source
        watched = getattr(self.viewer, "watching_source", None)
        watching = watched(source) if watched is not None else self.viewer.watching
        if not watching or result.rendered is None:
            self.unwatched += 1
            return
        now = time.monotonic()
        due = self._next.get(source, 0.0)
        if now < due:
            self.rate_limited += 1
            return
        # on schedule: keep the grid (a steady --view-fps); late by more: restart it from now
        late = now - due
        self._next[source] = (due if late < self.interval else now) + self.interval
        ok, jpeg = cv2.imencode(".jpg", result.rendered, self.params)
        if ok:
            self.encoded += 1
            if source:
                self.viewer.publish(jpeg.tobytes(), source=source)
            else:
                self.viewer.publish(jpeg.tobytes())

    def counts(self):
        """For the run summary: JPEGs made, frames skipped (nobody watching, rate limit)."""
        return {"encoded": self.encoded, "unwatched": self.unwatched,
                "rate_limited": self.rate_limited}

    def close(self):
        self.viewer.close()
