"""Image sequences: ``out_%05d.jpg`` (a printf pattern of the frame number) or ``dir/``
(``dir/000000.jpg``, ...): every frame as it is shown (the overlay, or --visualize mask)."""
import logging
import os

import cv2

from edge.sinks import Sink, check_output_folder
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
FOLDER_PATTERN = "%06d.jpg"


def accepts(uri):
    return uri.scheme == "file" and (uri.extension in IMAGE_EXTENSIONS or is_folder(uri))


def is_folder(uri):
    return uri.path.endswith(("/", os.sep))


def pattern_of(uri):
    """The printf pattern of the file names; one-line error for a name without one."""
    if is_folder(uri):
        return os.path.join(uri.path, FOLDER_PATTERN)
    try:
        first, second = uri.path % 0, uri.path % 1
    except (TypeError, ValueError):
        first = second = None
    if first is None or first == second:
        raise NanosegError("--output {}: an image sequence needs the frame number in its "
                           "name, like out_%05d.jpg, or a folder ending in / (dir/)".format(
                               uri.text))
    return uri.path


def written_path(uri):
    """(the folder the images go to, True): checked before the run starts."""
    return (os.path.dirname(pattern_of(uri)) or ".", True)


class ImageSequenceSink(Sink):
    """One image file per frame, named by ``pattern`` % frame number (0, 1, ...)."""

    needs_render = True
    delivery = "every"

    def __init__(self, pattern, flag="--output"):
        self.pattern = pattern
        self.folder = os.path.dirname(pattern) or "."
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise NanosegError("cannot create {} folder {}: {}".format(flag, self.folder, exc))
        check_output_folder(pattern % 0, flag)
        self.frames = 0

    def write(self, result):
        path = self.pattern % self.frames
        if not cv2.imwrite(path, result.rendered):
            raise NanosegError("cannot write image {} (disk full or read-only?)".format(path))
        self.frames += 1

    def close(self):
        LOG.info("--output %s: %d images", self.pattern, self.frames)


def open_images(uri, options):
    return ImageSequenceSink(pattern_of(uri), options.flag)
