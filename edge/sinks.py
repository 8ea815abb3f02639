"""Where results go: a window, an mp4, mask PNGs, the MJPEG viewer.

Every sink has ``write(result)`` and ``close()``; the runtime calls them from its render
thread and always calls ``close()`` (also on Ctrl-C / SIGTERM), which is what finalizes the
mp4. A :class:`Result` carries the BGR frame, the label map at frame size and, when some sink
needs it, the rendered overlay.
"""
import logging
import os

import cv2

from edge.errors import NanosegError

LOG = logging.getLogger(__name__)
QUIT_KEYS = (ord("q"), 27)  # q or Esc in the window


class Result(object):
    """One processed frame handed from the inference stage to the sinks."""

    __slots__ = ("index", "name", "frame", "labels", "rendered")

    def __init__(self, index, name, frame, labels):
        self.index = index
        self.name = name
        self.frame = frame
        self.labels = labels
        self.rendered = None


class Sink(object):
    """``needs_render``: True when the sink shows the overlay (so it is drawn once)."""

    needs_render = False

    def write(self, result):
        raise NotImplementedError

    def close(self):
        pass

    @property
    def wants_stop(self):
        """True when the user asked this sink to stop the run (window: q / Esc)."""
        return False


class VideoSink(Sink):
    """The rendered overlay as an mp4 (mp4v), opened at the first frame's size."""

    needs_render = True

    def __init__(self, path, fps=30.0):
        self.path = path
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames = 0
        self._writer = None
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise NanosegError("--save-video folder {} does not exist: create it first".format(
                folder))

    def write(self, result):
        image = result.rendered
        if self._writer is None:
            self._writer = self._open(image.shape[1], image.shape[0])
        elif (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
        self.frames += 1

    def _open(self, width, height):
        writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                 (width, height))
        if not writer.isOpened():
            raise NanosegError("cannot write --save-video {}: OpenCV has no mp4v encoder or "
                               "the path is not writable".format(self.path))
        self._size = (width, height)
        LOG.info("writing %s (%dx%d, %.1f fps)", self.path, width, height, self.fps)
        return writer

    def close(self):
        """Release the writer: this writes the mp4's index, so the file plays."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            LOG.info("saved %s (%d frames)", self.path, self.frames)


class MaskSink(Sink):
    """One PNG of label ids per frame: ``<index>_<source name>.png`` in ``folder``."""

    def __init__(self, folder):
        self.folder = folder
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise NanosegError("cannot create --save-masks folder {}: {}".format(folder, exc))
        self.written = 0

    def write(self, result):
        path = os.path.join(self.folder, mask_filename(result.index, result.name))
        if not cv2.imwrite(path, result.labels):
            raise NanosegError("cannot write mask {} (disk full or read-only?)".format(path))
        self.written += 1


def mask_filename(index, name):
    """``000012_name.png``: sortable by frame index, traceable to the source file."""
    return "{:06d}_{}.png".format(int(index), name)


class WindowSink(Sink):
    """An OpenCV window with the overlay; q or Esc stops the run."""

    needs_render = True

    def __init__(self, title="nanoseg"):
        self.title = title
        self._quit = False
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise NanosegError("this OpenCV cannot open a window (headless build or no "
                               "display): use --headless, optionally with --view-port 8080")

    def write(self, result):
        cv2.imshow(self.title, result.rendered)
        if (cv2.waitKey(1) & 0xFF) in QUIT_KEYS:
            self._quit = True

    @property
    def wants_stop(self):
        return self._quit

    def close(self):
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


class ViewerSink(Sink):
    """JPEG-encodes the overlay for the MJPEG viewer (edge/viewer.py)."""

    needs_render = True

    def __init__(self, viewer, quality=80):
        self.viewer = viewer
        self.params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]

    def write(self, result):
        ok, jpeg = cv2.imencode(".jpg", result.rendered, self.params)
        if ok:
            self.viewer.publish(jpeg.tobytes())

    def close(self):
        self.viewer.close()
