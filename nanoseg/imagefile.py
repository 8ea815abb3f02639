"""Whether an image file is whole: OpenCV decodes a cut-off JPEG or PNG without an error.

libjpeg only prints "Premature end of JPEG file" and fills the missing rows with grey 128
(which a binary mask decoder turns into the class); a PNG cut short decodes its first rows.
Every reader of image files (the datasets, the edge's folder source) asks
:func:`incomplete_reason` after decoding. The check reads the file's last bytes: a JPEG ends
with its EOI marker, a PNG with its IEND chunk, a BMP or WebP is as long as its header says.
Python 3.6, standard library only.
"""
import os
import struct

TAIL = 4096  # bytes read from the end: room for padding after the last marker
JPEG_EOI = b"\xff\xd9"
PNG_IEND = b"IEND\xaeB`\x82"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def incomplete_reason(path):
    """Why the image file ``path`` is cut short (one phrase), or None when it is whole or of
    a kind this cannot tell (TIFF)."""
    with open(path, "rb") as handle:
        head = handle.read(32)
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL))
        tail = handle.read()
    if head[:2] == b"\xff\xd8":
        # zero bytes after EOI are padding some cameras write; anything else is a cut
        if not tail.rstrip(b"\x00").endswith(JPEG_EOI):
            return "the JPEG data ends before its end marker (EOI)"
    elif head[:8] == PNG_SIGNATURE:
        if PNG_IEND not in tail[-64:]:
            return "the PNG data ends before its IEND chunk"
    elif head[:2] == b"BM" and len(head) >= 6:
        declared = struct.unpack("<I", head[2:6])[0]
        if size < declared:
            return "the BMP holds {} of the {} bytes its header declares".format(size, declared)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        declared = struct.unpack("<I", head[4:8])[0] + 8
        if size < declared:
            return "the WebP holds {} of the {} bytes its header declares".format(size,
                                                                                declared)
    return None
