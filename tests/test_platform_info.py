"""nanoseg.platform_info: the L4T release file and cv2.getBuildInformation(), from samples."""
import sys

import pytest

from nanoseg import platform_info
from nanoseg.errors import NanosegError

# Real first lines of /etc/nv_tegra_release (JetPack 4.6.1 on a Nano; 4.5.1; 5.1.2 on Orin).
R32_7_1 = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
           "DATE: Sat Feb 19 17:05:08 UTC 2022\n# KERNEL_VARIANT: oot\n")
R32_5_1 = ("# R32 (release), REVISION: 5.1, GCID: 27362550, BOARD: t210ref, EABI: aarch64, "
           "DATE: Wed May 19 18:16:00 UTC 2021\n")
R35_4_1 = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
           "DATE: Tue Aug  1 19:57:35 UTC 2023\n")

# Excerpts of cv2.getBuildInformation(): JetPack 4.6's OpenCV 4.1.1 and a pip headless 4.8.
JETPACK_OPENCV = """
General configuration for OpenCV 4.1.1 =====================================
  GUI: 
    GTK+:                        YES (ver 3.22.30)
      GThread :                  YES (ver 2.56.4)
      GtkGlExt:                  NO
    VTK support:                 NO

  Video I/O:
    FFMPEG:                      YES
      avcodec:                   YES (57.107.100)
    GStreamer:                   YES (1.14.5)
    v4l/v4l2:                    linux/videodev2.h
"""
PIP_HEADLESS_OPENCV = """
General configuration for OpenCV 4.8.0 =====================================
  GUI:                           NONE

  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES
    GStreamer:                   NO
    v4l/v4l2:                    YES (linux/videodev2.h)
"""


def test_real_release_lines_give_l4t_and_jetpack():
    info = platform_info.parse_tegra_release(R32_7_1)
    assert (info["major"], info["revision"], info["l4t"]) == (32, "7.1", "32.7.1")
    assert info["jetpack"] == "4.6.1" and info["board"] == "t210ref"
    assert info["eabi"] == "aarch64" and info["date"] == "Sat Feb 19 17:05:08 UTC 2022"
    assert platform_info.l4t_supported(info)
    old = platform_info.parse_tegra_release(R32_5_1)
    assert old["l4t"] == "32.5.1" and not platform_info.l4t_supported(old)
    orin = platform_info.parse_tegra_release(R35_4_1)
    assert orin["jetpack"] == "5.x" and not platform_info.l4t_supported(orin)
    assert platform_info.jetpack_for_l4t("32.6.1") == "4.6"
    assert platform_info.jetpack_for_l4t("32.7.9") == "4.6.x"
    assert not platform_info.l4t_supported(None)


@pytest.mark.parametrize("text", ["", "Ubuntu 18.04.6 LTS", "# R32 (release)"])
def test_other_text_is_not_a_release_line(text):
    with pytest.raises(NanosegError, match="^sample does not look like an L4T release line"):
        platform_info.parse_tegra_release(text, source="sample")


def test_the_release_file_is_read_once_and_absent_off_a_jetson(tmp_path):
    release = tmp_path / "nv_tegra_release"
    assert platform_info.read_tegra_release(str(release)) is None
    assert platform_info.is_jetson(str(release)) is False
    release.write_text(R32_7_1)
    assert platform_info.read_tegra_release(str(release))["jetpack"] == "4.6.1"
    assert platform_info.is_jetson(str(release)) is True
    release.write_text("garbage\n")
    with pytest.raises(NanosegError, match="^{} does not look like".format(release)):
        platform_info.read_tegra_release(str(release))


def test_build_flags_from_jetpack_and_pip_samples():
    flag = platform_info.opencv_build_flag
    assert flag("GStreamer", JETPACK_OPENCV) is True
    assert flag("gstreamer", PIP_HEADLESS_OPENCV) is False
    assert flag("FFMPEG", PIP_HEADLESS_OPENCV) is True
    assert flag("v4l/v4l2", JETPACK_OPENCV) is True  # a path counts as built in
    assert flag("DC1394", PIP_HEADLESS_OPENCV) is False
    assert flag("DC1394", JETPACK_OPENCV) is None  # not listed
    assert platform_info.opencv_has_gstreamer(JETPACK_OPENCV) is True
    assert platform_info.opencv_has_gstreamer(PIP_HEADLESS_OPENCV) is False
    assert platform_info.opencv_has_gstreamer("FFMPEG: YES") is False


def test_gui_is_read_from_the_old_section_and_the_new_single_line():
    has_gui = platform_info.opencv_has_gui
    assert has_gui(JETPACK_OPENCV) is True
    assert has_gui(PIP_HEADLESS_OPENCV) is False
    assert has_gui("  GUI:                           GTK3\n") is True
    old_style = ("  GUI: \n    GTK+:                        {}\n    VTK support:    YES\n\n"
                 "  Media I/O:\n")
    assert has_gui(old_style.format("NO")) is False  # OpenCV 4.1 headless: VTK is no window
    assert has_gui(old_style.format("YES (ver 3.22.30)")) is True
    assert has_gui("  Video I/O:\n    FFMPEG: YES\n") is True  # no GUI section: let it try


def test_this_cv2_is_asked_when_no_text_is_given():
    import cv2
    info = cv2.getBuildInformation()
    assert platform_info.build_information() == info
    assert platform_info.opencv_has_gstreamer() == platform_info.opencv_has_gstreamer(info)
    assert platform_info.opencv_has_gui() == platform_info.opencv_has_gui(info)


def test_a_broken_cv2_makes_the_flags_unknown(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    assert platform_info.build_information() is None
    assert platform_info.opencv_build_flag("GStreamer") is None
    assert platform_info.opencv_has_gstreamer() is False
