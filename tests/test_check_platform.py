"""jetson/check_platform.py: real-format L4T release lines and nvpmodel output, the CLI off a
Jetson and with a sample release file, under this Python and under 3.6."""
import json
import os
import sys

import pytest

from jetson import check_platform
from nanoseg import platform_info
from tests.jetson_helpers import CHECK_PLATFORM, JETSON, run_cmd
from tests.jetson_helpers import off_jetson  # noqa: F401,F811 (fixtures)

# Real first lines of /etc/nv_tegra_release (JetPack 4.6.1 on a Nano; 4.5.1).
R32_7_1 = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
           "DATE: Sat Feb 19 17:05:08 UTC 2022\n# KERNEL_VARIANT: oot\n")
R32_5_1 = ("# R32 (release), REVISION: 5.1, GCID: 27362550, BOARD: t210ref, EABI: aarch64, "
           "DATE: Wed May 19 18:16:00 UTC 2021\n")


# -- check_platform.py --------------------------------------------------------------------
def test_power_mode_is_parsed_from_nvpmodel_output():
    assert check_platform.parse_power_mode("NV Power Mode: MAXN\n0") == {"name": "MAXN",
                                                                         "id": 0}
    assert check_platform.parse_power_mode("NV Power Mode: 5W\n1") == {"name": "5W", "id": 1}
    assert check_platform.parse_power_mode(None) is None


def test_l4t_core_package_cross_check():
    info = platform_info.parse_tegra_release(R32_7_1)
    assert check_platform.l4t_core_matches(info, "32.7.1-20220219090432") is True
    assert check_platform.l4t_core_matches(info, "32.6.1-20210726122859") is False
    assert check_platform.l4t_core_matches(info, None) is None
    assert check_platform.l4t_core_matches(None, "32.7.1-20220219090432") is None
    report = {"jetson": True, "l4t": info, "l4t_supported": True, "release_file": "/etc/x",
              "l4t_core_package": "32.6.1-20210726122859", "l4t_core_matches": False}
    problems = check_platform.failed_checks(report, ["l4t"])
    assert problems == ["/etc/x says L4T R32.7.1 but the nvidia-l4t-core package is "
                        "32.6.1-20210726122859: finish the half-done upgrade (sudo apt-get "
                        "update && sudo apt-get dist-upgrade, then reboot)"]
    report.update(l4t_core_package="32.7.1-20220219090432", l4t_core_matches=True)
    assert check_platform.failed_checks(report, ["l4t"]) == []


def test_a_missing_rtsp_server_fails_only_its_own_check():
    """Only --output rtsp:// needs GstRtspServer, so --check gstreamer does not ask for it."""
    report = {"jetson": False, "modules": {"cv2": {"ok": True, "version": "4.1.1"}},
              "cv2_gstreamer": True,
              "gst_elements": dict((name, True) for group in
                                   check_platform.gst.platform_requirements(False)
                                   for name in group),
              "gst_rtsp_server": {"ok": False, "error": "ImportError: No module named 'gi'"}}
    assert check_platform.failed_checks(report, ["gstreamer"]) == []
    assert check_platform.failed_checks(report, ["rtsp-server"]) == [
        "python3-gi with GstRtspServer does not import (ImportError: No module named 'gi'), "
        "--output rtsp:// needs it: sudo apt-get install python3-gi "
        "gir1.2-gst-rtsp-server-1.0"]


def test_pycuda_status_imports_the_driver(tmp_path, monkeypatch):
    """pycuda's package imports without CUDA; only pycuda.driver proves it works."""
    package = tmp_path / "pycuda"
    package.mkdir()
    (package / "__init__.py").write_text('VERSION_TEXT = "2021.1"\n')
    (package / "driver.py").write_text(
        'raise ImportError("libcuda.so.1: cannot open shared object file")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("pycuda", "pycuda.driver"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    status = check_platform.module_status("pycuda")
    assert status == {"ok": False, "error": "ImportError: libcuda.so.1: cannot open shared "
                                            "object file"}
    (package / "driver.py").write_text("def get_version():\n    return (10, 2, 0)\n")
    for name in ("pycuda", "pycuda.driver"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert check_platform.module_status("pycuda") == {"ok": True, "version": "2021.1"}
    for name in ("pycuda", "pycuda.driver"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_check_platform_cli_off_jetson(off_jetson):
    code, out, err = run_cmd([sys.executable, CHECK_PLATFORM])
    assert code == 0 and err == ""
    assert out.splitlines()[0] == ("platform: not a Jetson (/etc/nv_tegra_release is missing;"
                                   " machine {})".format(os.uname().machine))
    assert "tensorrt: missing" in out or "tensorrt: " in out
    code, out, err = run_cmd([sys.executable, CHECK_PLATFORM, "--check", "l4t"])
    assert code == 2 and err.startswith("error: not a Jetson") and "Traceback" not in err


def test_check_platform_cli_with_sample_release(tmp_path):
    release = tmp_path / "nv_tegra_release"
    release.write_text(R32_7_1)
    code, out, err = run_cmd([sys.executable, CHECK_PLATFORM, "--release-file", str(release),
                              "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert report["jetson"] and report["l4t_supported"] and report["l4t"]["jetpack"] == "4.6.1"
    assert report["modules"]["cv2"]["ok"] and report["cv2_gstreamer"] is False  # pip's cv2
    code, out, err = run_cmd([sys.executable, CHECK_PLATFORM, "--release-file", str(release),
                              "--check", "l4t"])
    assert (code, out.strip()) == (0, "ok: l4t"), err
    code, _, err = run_cmd([sys.executable, CHECK_PLATFORM, "--release-file", str(release),
                            "--check", "gstreamer"])
    assert code == 2 and "has no GStreamer" in err and "nvidia-opencv" in err
    release.write_text(R32_5_1)
    code, _, err = run_cmd([sys.executable, CHECK_PLATFORM, "--release-file", str(release),
                            "--check", "l4t"])
    assert code == 2 and "L4T R32.5.1" in err and "not JetPack 4.6.x" in err


def test_check_platform_runs_under_python36(tmp_path, python36):
    """The Jetson's interpreter: the session's Python 3.6 venv (tests/py36_env.py)."""
    release = tmp_path / "nv_tegra_release"
    release.write_text(R32_7_1)
    code, out, err = run_cmd([python36, CHECK_PLATFORM, "--release-file", str(release)])
    assert code == 0, err
    assert "L4T R32.7.1 -> JetPack 4.6.1 (supported)" in out and "python: 3.6." in out


def test_vermin_python36():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.isfile(vermin):
        pytest.skip("vermin is not installed (requirements-desktop.txt)")
    files = [os.path.join(JETSON, name) for name in sorted(os.listdir(JETSON))
             if name.endswith(".py")]
    assert CHECK_PLATFORM in files
    code, out, err = run_cmd([vermin, "-q", "--no-tips", "-t=3.6-", "--eval-annotations",
                              "--violations"] + files)
    assert code == 0, out + err


def test_an_option_whose_elements_are_missing_is_reported_and_never_fails_set_up():
    """A Jetson without jpegparse: --input-codec mjpeg is named with its apt package; the
    gstreamer check (what setup.sh stops on) still passes."""
    from edge import gst
    present = dict((name, True) for group in gst.platform_requirements(True) for name in group)
    present.update(v4l2src=True, h264parse=True, h265parse=True, nvv4l2h265enc=True,
                   udpsrc=True, rtpjitterbuffer=True, rtph264depay=True)
    missing = gst.missing_features(True, lambda name: present.get(name, False))
    assert missing == [("--input-codec mjpeg", ["jpegparse"])]
    report = {"jetson": True, "modules": {"cv2": {"ok": True, "version": "4.1.1"}},
              "cv2_gstreamer": True, "gst_elements": present,
              "gst_missing_features": [{"option": o, "missing": m} for o, m in missing],
              "gst_rtsp_server": {"ok": True, "version": "1.14.5"}}
    assert check_platform.failed_checks(report, ["gstreamer"]) == []
    assert check_platform.feature_lines(report["gst_missing_features"]) == [
        "--input-codec mjpeg: not available here, missing jpegparse (apt "
        "gstreamer1.0-plugins-bad)"]
    assert check_platform.feature_lines([]) == [
        "GStreamer for the camera and codec options: all present"]
