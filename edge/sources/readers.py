"""Readers: how to get one BGR frame at a time from one kind of source.

A :class:`Reader` is driven by :class:`edge.sources.stream.SourceStream` from its capture
thread. :class:`CaptureReader` wraps a ``cv2.VideoCapture`` (cameras, RTSP, video files,
GStreamer pipelines); :class:`ImageListReader` reads a sorted list of image files (a folder
or a glob, listed here the way training's readers list them). Python 3.6 + numpy + OpenCV.
"""
import glob
import logging
import os

import cv2

from nanoseg.errors import NanosegError
from nanoseg.files import sample_name
from nanoseg.imagefile import incomplete_reason
from nanoseg.preprocess import IMAGE_READ_FLAGS

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def release_quietly(resource, description):
    """release()/close() a capture or connection, logging (not raising) a failure."""
    closer = getattr(resource, "release", None) or getattr(resource, "close", None)
    if closer is None:
        return
    try:
        closer()
    except Exception as exc:  # a broken driver must not take the shutdown with it
        LOG.warning("releasing %s failed: %r", description, exc)


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
    probe's "wrong password"); None keeps the generic message. ``check_length``: a video
    file whose container declares its frame count (an index); ending well short of it is
    an error.
    """

    def __init__(self, description, opener, live, size=None, fps=None, explain=None,
                 check_length=False):
        self.description = description
        self.check_length = check_length
        self._opener = opener
        self._explain = explain
        self.live = live
        self._size = size
        self._want_fps = fps
        self._capture = None
        self._count = 0
        self._declared = 0
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
            release_quietly(capture, self.description)
            reason = self._explain() if self._explain is not None else None
            raise NanosegError("cannot open {}: {}".format(self.description, reason or (
                "OpenCV could not open it (check the device, address or file, and that it is "
                "not in use)")))
        self._configure(capture)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        self._declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) \
            if self.check_length else 0
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
            self._check_length()
            return None
        self._count += 1
        return "frame{:06d}".format(self._count - 1), frame

    def _check_length(self):
        """A video file that stops decoding well before the frame count its container
        declares is damaged: an error, not a quiet end of source. Containers without an
        index (and some backends) only estimate the count from the duration, so a shortfall
        of up to 1 % (at least 2 frames) passes."""
        missing = self._declared - self._count
        if self._declared > 0 and missing > max(2, self._declared // 100):
            raise NanosegError("{} stopped decoding at frame {} of the {} its container "
                               "declares: the file is damaged; re-encode or replace it".format(
                                   self.description, self._count, self._declared))

    def detach(self):
        capture, self._capture = self._capture, None
        return capture

    def close(self):
        capture, self._capture = self._capture, None
        if capture is not None:
            release_quietly(capture, self.description)


class ImageListReader(Reader):
    """Images from a sorted list of paths, each read as BGR.

    ``names`` (one per path) name the frames; by default each file's stem. A folder source
    passes relative paths without extension ("day1/cam/x"), so saved masks keep them.
    ``skip_incomplete``: a file that decodes only partly (cut short) is skipped with a
    warning and counted in ``skipped`` (folders, globs); otherwise it is an error.
    """

    def __init__(self, paths, description, names=None, skip_incomplete=True):
        self.paths = list(paths)
        self.description = description
        self.skip_incomplete = skip_incomplete
        self.skipped = 0
        if names is None:
            names = [os.path.splitext(os.path.basename(p))[0] for p in self.paths]
        self.names = list(names)
        if len(self.names) != len(self.paths):
            raise ValueError("ImageListReader needs one name per path")
        self._next = 0

    def open(self):
        self._next = 0

    def read(self):
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            frame = cv2.imread(path, IMAGE_READ_FLAGS)   # as training's readers decode files
            if frame is None:
                raise NanosegError("cannot read image {}: not an image OpenCV can decode "
                                   "(remove it from the folder)".format(path))
            reason = incomplete_reason(path)
            if reason is None:
                return self.names[self._next - 1], frame
            if not self.skip_incomplete:
                raise NanosegError("image {} is truncated ({}): only part of it decodes; "
                                   "replace it".format(path, reason))
            self.skipped += 1  # a mask for the grey rows below the cut would be wrong
            LOG.warning("skipping image %s: it is truncated (%s)", path, reason)
        return None


# -- image listing: folders and globs -------------------------------------------------------
def is_image_path(path):
    """Image files by extension; hidden files (.DS_Store, ._x.jpg) are never frames."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def image_paths(pattern):
    """The images a glob matches, sorted by path."""
    return sorted(p for p in glob.glob(pattern) if is_image_path(p))


def folder_images(folder):
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
            if is_image_path(path):
                found.append((sample_name(path, folder), path))
    found.sort()
    return [path for _, path in found], [name for name, _ in found]

