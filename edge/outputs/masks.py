"""masks://DIR: a label-id PNG per frame (``--save-masks DIR`` is this)."""
from edge.sinks import MaskSink
from nanoseg.errors import NanosegError


def accepts(uri):
    return uri.scheme == "masks"


def folder_of(uri):
    folder = uri.text.partition("://")[2]
    if not folder:
        raise NanosegError("--output {} needs a folder: masks://DIR".format(uri.text))
    return folder


def written_path(uri):
    return (folder_of(uri), True)


def open_masks(uri, options):
    return MaskSink(folder_of(uri))
