"""Outputs named by URIs, like jetson-utils' videoOutput: one family, parsed once.

    --output overlay.mp4 | overlay.mkv   H.264/H.265 through GStreamer (hardware on a Jetson)
    --output other.avi                   OpenCV's software writer (--save-video FILE)
    --output out_%05d.jpg | dir/         an image sequence
    --output rtp://HOST:PORT             H.264/H.265 RTP over UDP to HOST
    --output rtsp://@:PORT/NAME          an RTSP server on this device (@: every interface)
    --output http://@:PORT/              the browser viewer (--view-port PORT)
    --output display://0                 a window (what runs without --headless)
    --output masks://DIR                 a label-id PNG per frame (--save-masks DIR)

:func:`open_output` parses the URI once (:class:`OutputURI`) and opens the sink of its row in
:data:`OUTPUTS`. The H.264 ones are :class:`edge.sinks.Sink` s writing the rendered overlay
into an OpenCV ``cv2.VideoWriter`` on a GStreamer pipeline (edge/gst.py). ``close()``
releases the writer, which sends EOS: only then does mp4mux write the index that makes the
file playable, so the runtime's close on SIGINT/SIGTERM/end of source is what finalizes it.
A file without GStreamer falls back to OpenCV's software writer.
"""
from edge.outputs.files import H264FileSink
from edge.outputs.images import ImageSequenceSink
from edge.outputs.rtp import RtpSink
from edge.outputs.rtsp import (RTSP_APT_PACKAGES, RTSP_DEFAULT_PORT, RtspServer,
                               RtspServerSink, free_port)
from edge.outputs.schemes import (OUTPUT_FORMS, OUTPUTS, OutputOptions, OutputScheme,
                                  open_output, output_help, output_scheme, scheme_for,
                                  shows_every_source, written_path)
from edge.outputs.uri import OutputURI
from edge.outputs.writer import OUTPUT_FLAG, GstWriterSink, writer_size

__all__ = ["GstWriterSink", "H264FileSink", "ImageSequenceSink", "OUTPUTS", "OUTPUT_FLAG",
           "OUTPUT_FORMS", "OutputOptions", "OutputScheme", "OutputURI", "RTSP_APT_PACKAGES",
           "RTSP_DEFAULT_PORT", "RtpSink", "RtspServer", "RtspServerSink", "free_port",
           "open_output", "output_help", "output_scheme", "scheme_for", "shows_every_source",
           "writer_size", "written_path"]
