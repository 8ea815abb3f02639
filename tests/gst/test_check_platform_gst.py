"""jetson/check_platform.py --check gstreamer against this machine's real GStreamer."""
import os
import subprocess
import sys

from edge import gst

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK_PLATFORM = os.path.join(ROOT, "jetson", "check_platform.py")
R32_7_1 = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
           "DATE: Sat Feb 19 17:05:08 UTC 2022\n")


def check_gstreamer(*extra):
    return subprocess.run([sys.executable, CHECK_PLATFORM, "--check", "gstreamer"]
                          + list(extra), capture_output=True, text=True, timeout=120)


def test_this_machine_has_every_element_nanoseg_uses():
    result = check_gstreamer()
    assert result.returncode == 0 and result.stdout.strip() == "ok: gstreamer", result.stderr
    report = subprocess.run([sys.executable, CHECK_PLATFORM], capture_output=True,
                            text=True, timeout=120).stdout
    assert "cv2 GStreamer: yes" in report
    assert "GStreamer elements: all {} present".format(
        sum(len(group) for group in gst.platform_requirements(False))) in report
    assert "GStreamer RTSP server (python3-gi): GStreamer 1." in report


def test_a_missing_rtsp_server_for_python_names_its_apt_packages():
    """The elements are all here, but --output rtsp:// also needs gi's GstRtspServer."""
    code = ("import sys, runpy; sys.modules['gi.repository.GstRtspServer'] = None; "
            "sys.argv = ['check_platform.py', '--check', 'gstreamer', '--check', "
            "'rtsp-server']; "
            "runpy.run_path({!r}, run_name='__main__')".format(CHECK_PLATFORM))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: python3-gi with GstRtspServer does not import ("), result.stderr
    assert lines[0].endswith("--output rtsp:// needs it: sudo apt-get install python3-gi "
                             "gir1.2-gst-rtsp-server-1.0")
    assert "GStreamer elements missing" not in lines[0]


def test_on_a_jetson_the_missing_hardware_elements_are_named(tmp_path):
    """A stand-in release file makes this a Jetson: its NVIDIA elements are missing here."""
    release = tmp_path / "nv_tegra_release"
    release.write_text(R32_7_1)
    result = check_gstreamer("--release-file", str(release))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for element in ("nvarguscamerasrc", "nvvidconv", "nvv4l2decoder", "nvv4l2h264enc"):
        assert "{} (apt nvidia-l4t-gstreamer)".format(element) in lines[0]
    assert "sudo apt-get install nvidia-l4t-gstreamer" in lines[0]
    assert "x264enc" not in lines[0] and "rtspsrc" not in lines[0]  # present here


def test_real_lookups_find_present_elements_and_miss_made_up_ones():
    names = ["x264enc", "rtspsrc", "nanoseg-no-such-element", "avdec_h264"]
    assert gst.missing_elements(names) == ["nanoseg-no-such-element"]
    assert gst._find_with_gi("rtspsrc") is True and gst._find_with_inspect("rtspsrc") is True
    assert gst._find_with_inspect("nanoseg-no-such-element") is False


def test_the_element_report_needs_no_cv2():
    """A broken OpenCV is what check_platform must diagnose, so it may not need cv2 itself."""
    code = ("import sys, runpy; sys.modules['cv2'] = None; "
            "sys.argv = ['check_platform.py', '--check', 'gstreamer']; "
            "runpy.run_path({!r}, run_name='__main__')".format(CHECK_PLATFORM))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: cv2 does not import, so its GStreamer support is unknown: sudo apt-get "
        "install nvidia-opencv (JetPack's GStreamer build; never pip install opencv-python "
        "on the Jetson)"]
