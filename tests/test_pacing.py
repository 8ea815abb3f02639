"""edge.pacing: live recordings hold each frame until the next one's capture time."""
import numpy as np

from edge.pacing import FramePacer
from edge.sinks import VideoSink
from tests.video_helpers import decode_frames, rendered_results


def test_frames_land_on_their_capture_time_slots_and_the_previous_one_is_held():
    pacer = FramePacer(30.0)
    times = [100.0, 100.1, 100.2, 100.25, 100.26, 101.0]
    held = [pacer.held_copies(t) for t in times]
    # slots 0, 3, 6, 8 (round(7.5): one held), 9 (due at 8: late, written, never dropped), 30
    assert held == [0, 2, 2, 1, 0, 20]
    assert pacer.slots == 31 and pacer.repeated == 25
    untimed = FramePacer(30.0)
    assert [untimed.held_copies(None) for _ in range(3)] == [0, 0, 0]  # a frame follows a frame


def test_a_live_recording_lasts_as_long_as_the_run_and_holds_every_frame(tmp_path):
    """10 frames captured 0.1 s apart into a 30 fps file: 28 frames = 0.93 s, as captured
    (plus the last frame's own 1/30 s), each handed frame in it, the ones between held."""
    results = rendered_results(10)
    for number, result in enumerate(results):
        result.time = 50.0 + 0.1 * number
    live = VideoSink(str(tmp_path / "live.avi"), fps=30.0, realtime=True)
    still = VideoSink(str(tmp_path / "file.avi"), fps=30.0)
    for result in results:
        live.write(result)
        still.write(result)
    live.close()
    still.close()
    recorded = decode_frames(str(tmp_path / "live.avi"))
    assert len(recorded) == 28 and live.frames == 10 and live.repeated == 18
    assert len(decode_frames(str(tmp_path / "file.avi"))) == 10  # not live: every frame once
    for number, result in enumerate(results):
        first = recorded[3 * number]
        assert np.mean(np.abs(first.astype(int) - result.rendered.astype(int))) < 3.0, number
        if number + 1 < len(results):  # held until the next frame's slot
            for copy in recorded[3 * number + 1:3 * number + 3]:
                assert np.mean(np.abs(copy.astype(int) - first.astype(int))) < 1.0
