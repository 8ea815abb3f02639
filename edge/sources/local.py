"""Sources on this machine's disk: a video (or single image) file, an image folder, a glob."""
import os

import cv2

from edge.sources.readers import (IMAGE_EXTENSIONS, CaptureReader, ImageListReader,
                                  folder_images, image_paths)
from nanoseg import platform_info
from nanoseg.errors import NanosegError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".h264")
# containers whose frame count is known (indexed); MPEG-PS and raw H.264 only estimate it
INDEXED_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


def is_file(uri):
    return uri.scheme == "file" and not uri.pattern and os.path.isfile(uri.path)


def is_folder(uri):
    return uri.scheme == "file" and not uri.pattern and os.path.isdir(uri.path)


def is_glob(uri):
    return uri.scheme == "file" and uri.pattern


def is_missing_file(uri):
    """A path named like a video or an image file (by its extension) that does not exist:
    not a row of the table, only a better error than "unknown"."""
    return uri.scheme == "file" and not uri.pattern and not os.path.exists(uri.path) and \
        uri.extension in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS


def file_reader(uri, options):
    """Every frame of a video file (an image file is a one-frame source)."""
    if uri.extension in IMAGE_EXTENSIONS:
        return ImageListReader([uri.path], uri.path, skip_incomplete=False)
    return CaptureReader(uri.path, _file_opener(uri.path), live=False,
                         check_length=uri.extension in INDEXED_VIDEO_EXTENSIONS)


def folder_reader(uri, options):
    """Every image under the folder, nested folders included, named by relative path."""
    paths, names = folder_images(uri.path)
    if not paths:
        raise NanosegError("the folder {} holds no images, nor do its sub-folders: point "
                           "--source at a folder of .jpg/.png files".format(uri.path))
    return ImageListReader(paths, "{} ({} images)".format(uri.path, len(paths)), names)


def glob_reader(uri, options):
    """The images the glob matches, sorted by path."""
    paths = image_paths(uri.path)
    if not paths:
        raise NanosegError("the glob {!r} matches no images ({})".format(
            uri.path, " ".join(IMAGE_EXTENSIONS)))
    return ImageListReader(paths, "{} ({} images)".format(uri.path, len(paths)))


def _file_opener(path):
    """FFmpeg when this OpenCV has it, else (or when FFmpeg cannot) any backend: on a Jetson
    whose OpenCV has GStreamer but no FFmpeg, GStreamer decodes the file."""
    def open_file():
        capture = None
        if platform_info.opencv_build_flag("FFMPEG") is not False:
            capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if capture is None or not capture.isOpened():
            capture = cv2.VideoCapture(path, cv2.CAP_ANY)
        return capture
    return open_file
