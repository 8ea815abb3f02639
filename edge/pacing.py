"""Recordings of live sources that play in real time: frames held by repetition.

A writer is opened at a constant rate (the source's, or --video-fps) and OpenCV stamps
frame k at k/fps, whatever reached it. A live source hands the writers only the frames the
pipeline processed (a 10 FPS model behind a 30 fps camera: one in three), so without help
a recording played three times too fast and its RTP timestamps ran ahead.

:class:`FramePacer` keeps a constant-rate file in real time instead: each frame is placed
at its capture time (edge.sources.Frame.time, monotonic) rounded to the writer's frame grid,
and the frame before it is repeated to fill the slots in between, as a player would hold
it. Chosen over per-frame timestamps because it works through every writer nanoseg has
(OpenCV's own writer, GStreamer's appsrc, RTP) with no timestamp API, and a constant frame
rate is what every player, editor and RTP receiver handles; a repeated frame costs an H.264
encoder a near-empty P-frame. Every frame handed over is written; none is dropped. Video
files and folders are not paced: they keep every frame at the file's own rate.
Python 3.6, standard library only.
"""


class FramePacer(object):
    """Slots of a constant-rate grid at ``fps`` for frames stamped with capture times."""

    def __init__(self, fps):
        self.fps = float(fps)
        self.start = None
        self.slots = 0  # frames written so far, repeats included
        self.repeated = 0

    def held_copies(self, when):
        """How many extra copies of the previous frame to write before the frame captured at
        ``when`` (monotonic seconds; None: 0, the frame follows the previous one)."""
        if when is None or self.start is None:
            if self.start is None and when is not None:
                self.start = when
            self.slots += 1
            return 0
        due = int(round((when - self.start) * self.fps))  # this frame's slot
        held = max(0, due - self.slots)
        self.slots += held + 1
        self.repeated += held
        return held
