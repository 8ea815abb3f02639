"""Facts about the machine: the L4T release of a Jetson and what this OpenCV was built with.

The one reader of ``/etc/nv_tegra_release`` and the one parser of
``cv2.getBuildInformation()``: edge (which decoder, which capture backend, can a window
open) and jetson/check_platform.py (the report) both ask here. cv2 is imported only when
its build information is asked for, so the platform check also runs where cv2 is broken.
Python 3.6, standard library only.
"""
import os
import re

from nanoseg.errors import NanosegError

TEGRA_RELEASE = "/etc/nv_tegra_release"
SUPPORTED_L4T = ((32, 6), (32, 7))  # JetPack 4.6.x: TensorRT 8.0 (32.6) / 8.2 (32.7), CUDA 10.2
# Exact L4T -> JetPack pairs from NVIDIA's release notes; other R32.6/R32.7 are "4.6.x".
JETPACK_OF_L4T = {
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3",
    "32.7.4": "4.6.4", "32.7.5": "4.6.5",
}
JETPACK_OF_MAJOR = {32: "4.x", 34: "5.0 (developer preview)", 35: "5.x", 36: "6.x"}
_TEGRA_RE = re.compile(r"#\s*R(?P<major>\d+)\s*\(release\),\s*REVISION:\s*(?P<revision>[\d.]+)")
# Sub-entries of an OpenCV 4.1 "GUI:" section that are a window backend (not VTK, GThread...)
GUI_KEYS = ("gtk+", "gtk+ 2.x", "gtk+ 3.x", "qt", "win32 ui", "cocoa", "winrt")


# -- /etc/nv_tegra_release ------------------------------------------------------------------
def parse_tegra_release(text, source=TEGRA_RELEASE):
    """Parse the first line of /etc/nv_tegra_release into a dict.

    The line looks like ``# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref,
    EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022``; the L4T version is R32 + 7.1.
    """
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = _TEGRA_RE.search(first)
    if not match:
        raise NanosegError("{} does not look like an L4T release line (expected '# R32 "
                           "(release), REVISION: 7.1, ...'), got {!r}".format(source, first[:80]))
    info = {"major": int(match.group("major")), "revision": match.group("revision")}
    for field in first[match.end():].split(","):
        key, sep, value = field.partition(":")
        if sep and key.strip():
            info[key.strip().lower()] = value.strip()
    info["l4t"] = "{}.{}".format(info["major"], info["revision"])
    info["jetpack"] = jetpack_for_l4t(info["l4t"])
    return info


def jetpack_for_l4t(l4t):
    """The JetPack release of an L4T version string such as ``32.7.1``."""
    if l4t in JETPACK_OF_L4T:
        return JETPACK_OF_L4T[l4t]
    parts = l4t.split(".")
    major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    if (major, minor) in SUPPORTED_L4T:
        return "4.6.x"
    return JETPACK_OF_MAJOR.get(major, "unknown")


def l4t_supported(info):
    """True for R32.6.x / R32.7.x (JetPack 4.6.x), the release nanoseg's Jetson path targets."""
    if not info:
        return False
    minor = int(info["revision"].split(".")[0])
    return (info["major"], minor) in SUPPORTED_L4T


def read_tegra_release(path=TEGRA_RELEASE):
    """The parsed release file, or None when it is absent (not a Jetson)."""
    if not os.path.isfile(path):
        return None
    with open(path, "r") as handle:
        return parse_tegra_release(handle.read(), source=path)


def is_jetson(path=TEGRA_RELEASE):
    """True on a Jetson (L4T): its release file exists (pick the hardware decoder there)."""
    return os.path.isfile(path)


# -- cv2.getBuildInformation() --------------------------------------------------------------
def build_information():
    """cv2.getBuildInformation(), or None when cv2 does not import (a broken install)."""
    try:
        import cv2
    except Exception:  # ImportError, or a broken library raising something else
        return None
    return cv2.getBuildInformation()


def parse_build_information(text):
    """Every ``key: value`` line of the build information as (indent, key, value).

    Sections nest by indentation: OpenCV 4.1 prints ``GUI:`` with an empty value and the
    backends (``GTK+: YES (ver 3.22.30)``) indented below it.
    """
    entries = []
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip():
            entries.append((len(line) - len(line.lstrip()), key.strip(), value.strip()))
    return entries


def _entry(name, entries):
    """(index, entry) of the first entry called ``name`` (any case), or (None, None)."""
    for index, entry in enumerate(entries):
        if entry[1].lower() == name.lower():
            return index, entry
    return None, None


def _children(entries, index):
    """The entries indented below ``entries[index]`` (its section)."""
    indent = entries[index][0]
    children = []
    for entry in entries[index + 1:]:
        if entry[0] <= indent:
            break
        children.append(entry)
    return children


def _says_no(value):
    return value.upper().startswith("NO")  # "NO", and "NONE" (OpenCV >= 4.5's GUI: NONE)


def opencv_build_flag(name, build_info=None):
    """Whether the build information lists ``name`` (e.g. "GStreamer") as built in.

    True for ``YES ...`` or a path, False for ``NO``, None when the line is absent (or cv2
    does not import). ``build_info``: the text to read (default: this cv2's).
    """
    text = build_information() if build_info is None else build_info
    if text is None:
        return None
    _, entry = _entry(name, parse_build_information(text))
    if entry is None:
        return None
    return not _says_no(entry[2])


def opencv_has_gstreamer(build_info=None):
    """True when this OpenCV build can open GStreamer pipelines (JetPack's can)."""
    return bool(opencv_build_flag("GStreamer", build_info))


def opencv_has_gui(build_info=None):
    """False for a headless OpenCV (no GUI backend in its build information), else True.

    OpenCV >= 4.5 says ``GUI: NONE`` / ``GUI: GTK3``; OpenCV 4.1 prints ``GUI:`` and the
    backends below it. No GUI section at all: True (let the window call decide).
    """
    text = build_information() if build_info is None else build_info
    if text is None:
        return True
    entries = parse_build_information(text)
    index, entry = _entry("GUI", entries)
    if entry is None:
        return True
    if entry[2]:
        return not _says_no(entry[2])
    return any(key.lower() in GUI_KEYS and value.upper().startswith("YES")
               for _, key, value in _children(entries, index))
