"""edge/benchmarks/multi.py: the N-sources and dashboard rows on real video, and the goals
they are judged by (printed by the benchmark, never asserted as speeds here)."""
import pytest

from edge.benchmarks.goals import ratios
from edge.benchmarks.multi import rss_mib, run_dashboard_loop, run_sources_loop
from tests.multisource_helpers import standin_backend, write_camvid_videos
from tests.video_helpers import count_frames


@pytest.fixture(scope="module")
def street_video(tmp_path_factory, camvid_dir):
    return write_camvid_videos(tmp_path_factory.mktemp("street"), camvid_dir, count=1,
                               frames=12)[0]


def test_n_sources_split_the_frames_between_copies_of_the_video_and_sample_rss(
        street_video):
    assert rss_mib() > 10
    summary = run_sources_loop(standin_backend(2.0), street_video, 2, 1000)
    assert summary["frames"] == 2 * count_frames(street_video)
    assert len(summary["per_source_fps"]) == 2 and min(summary["per_source_fps"]) > 0
    assert summary["rss_mib"] >= rss_mib() * 0.5


def test_the_dashboard_row_has_a_client_on_the_stream_and_on_stats_json(street_video):
    summary = run_dashboard_loop(standin_backend(100.0), street_video, 1000, 15.0)
    assert summary["frames"] == count_frames(street_video)
    assert summary["viewer_bytes"] > 1000 and summary["stats_polls"] >= 1
    assert [s["sink"] for s in summary["sinks"]] == ["ViewerSink", "StatsSink"]


def test_the_multi_source_goals_are_ratios_to_one_source():
    results = {"sources_1": {"fps": 30.0, "rss_mib": 100.0},
               "sources_2": {"fps": 28.0, "per_source_fps": [14.5, 13.5], "rss_mib": 130.0},
               "loop_dashboard": {"fps": 27.0}}
    got = dict((item["name"], (item["value"], item["met"])) for item in ratios(results))
    assert got["2 sources / 1 source, total FPS"] == (0.933, True)
    assert got["2 sources: slowest source / 1 source FPS"] == (0.45, True)
    assert got["2 sources / 1 source, peak RSS"] == (1.3, False)
    assert got["loop + dashboard (1 client) / 1 source (FPS)"] == (0.9, False)
    assert ratios({}) == []
