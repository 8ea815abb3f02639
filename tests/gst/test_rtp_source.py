"""rtp://@:PORT as a source, on loopback, fed by nanoseg's own ``--output rtp://``.

The sender is edge.outputs' RtpSink (the writer run_camera uses), streaming rendered frames
that differ from each other; the receiver is open_source("rtp://@:PORT") -> udpsrc with the
RTP caps -> jitter buffer -> decoder -> OpenCV. What arrives is matched back to what was
sent: the right size, in order, at PSNR >= 30 dB.
"""
import threading
import time

import pytest

from edge import outputs, sources
from receive_helpers import MIN_PSNR, match_frames
from tests.gst.gst_helpers import requires_cv2_gstreamer
from tests.video_helpers import rendered_results

pytestmark = [pytest.mark.gst, requires_cv2_gstreamer]


class Sender(object):
    """Streams ``results`` over and over to rtp://127.0.0.1:port at ~``fps`` until stopped."""

    def __init__(self, port, results, fps=25.0, codec="h264"):
        self.sink = outputs.open_output("rtp://127.0.0.1:{}".format(port), fps=fps,
                                        codec=codec)
        self.results = results
        self.interval = 1.0 / fps
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        index = 0
        while not self.stop.is_set():
            self.sink.write(self.results[index % len(self.results)])
            index += 1
            time.sleep(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        self.sink.close()


@pytest.mark.parametrize("flip, codec", [(0, "h264"), (2, "h264"), (0, "h265")])
def test_rtp_from_nanosegs_own_output_arrives_decoded_in_order(flip, codec):
    port = outputs.free_port()
    results = rendered_results(48)
    sent = rendered_results(48)
    if flip:  # sent upside down: --flip 2 (one OpenCV call) turns it upright again
        for result in sent:
            result.rendered = result.rendered[::-1, ::-1].copy()
    with Sender(port, sent, codec=codec):  # --output-codec on one side, --rtsp-codec here
        stream = sources.open_source("rtp://@:{}".format(port), flip=flip, stall_timeout=5.0,
                                     rtsp_codec=codec)
        # joined mid-stream: avdec_h265 shows grey frames until the next key frame (one
        # per 30 frames); judge what arrives after that
        clean = time.monotonic() + 30 / 25.0 + 0.5
        try:
            frames = []
            deadline = time.monotonic() + 20
            while len(frames) < 12 and time.monotonic() < deadline:
                frame = stream.get(timeout=1.0)
                if frame is not None and frame.time > clean:
                    frames.append(frame.image)
        finally:
            stream.stop()
    assert len(frames) == 12, "only {} frames over RTP".format(len(frames))
    assert frames[0].shape == results[0].rendered.shape
    matches = match_frames(frames, results)
    assert min(score for _, score in matches) >= MIN_PSNR, matches
    steps = [(b - a) % len(results) for (a, _), (b, _) in zip(matches, matches[1:])]
    assert all(0 < step < 8 for step in steps), matches  # forward, newest frame wins
