"""What is this Jetson, and is it ready for nanoseg? (Python 3.6: runs on JetPack 4.6.)

Reports the L4T release (``/etc/nv_tegra_release``, cross-checked with the version of the
``nvidia-l4t-core`` package: a mismatch means a half-done upgrade), the JetPack it implies,
Python, the TensorRT / pycuda / OpenCV imports (pycuda as ``pycuda.driver``, which loads
CUDA), whether OpenCV was built with GStreamer (CSI cameras and RTSP need it), the GStreamer
elements nanoseg's pipelines use (each missing one named with its apt package) and the power
mode, and whether python3-gi's GstRtspServer imports (``--check rtsp-server``: only
``--output rtsp://`` needs it). It only reads: nothing is changed, so it has no
``--dry-run``. ``jetson/setup.sh`` and ``jetson/deploy.sh`` call ``--check`` to refuse early
with the fix instead of failing half way.

    python3 jetson/check_platform.py                 # human report, always exit 0
    python3 jetson/check_platform.py --json          # the same as JSON
    python3 jetson/check_platform.py --check l4t --check gstreamer   # exit 2 + fix if not
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import importlib
import json
import logging
import platform
import re
import subprocess
import sys

from edge import gst
from nanoseg import platform_info
from nanoseg.cli import add_logging_args, make_parser, run, setup_logging
from nanoseg.errors import NanosegError
from nanoseg.platform_info import TEGRA_RELEASE, l4t_supported, read_tegra_release

LOG = logging.getLogger(__name__)

SUPPORTED_PYTHON = (3, 6)
# rtsp-server is separate from gstreamer: only --output rtsp:// needs it, so setup.sh installs
# it (or warns) instead of stopping.
CHECKS = ("l4t", "python", "tensorrt", "pycuda", "cv2", "gstreamer", "rtsp-server")
APT_HINTS = {
    "tensorrt": "sudo apt-get install python3-libnvinfer (part of nvidia-jetpack)",
    "cv2": "sudo apt-get install nvidia-opencv (JetPack's GStreamer build; never pip "
           "install opencv-python on the Jetson)",
    "pycuda": "bash jetson/setup.sh (builds pycuda against CUDA 10.2)",
}


def _command_output(argv, timeout=10):
    """stdout of a command, or None when it is missing or fails (this is only a report)."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
    except OSError:
        return None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out.strip() if proc.returncode == 0 else None


def l4t_core_package_version():
    """Version of the nvidia-l4t-core package (e.g. ``32.7.1-20220219090432``), or None."""
    return _command_output(["dpkg-query", "-W", "-f=${Version}", "nvidia-l4t-core"]) or None


def l4t_core_matches(l4t, package_version):
    """Whether nvidia-l4t-core's version (``32.7.1-20220219090432``) is the release file's L4T.

    None when either is unknown (not a Jetson, or the package is not installed).
    """
    if not l4t or not package_version:
        return None
    return package_version.split("-", 1)[0] == l4t["l4t"]


# What to import to know a module works: pycuda's package imports without CUDA, its driver not.
IMPORT_NAMES = {"pycuda": "pycuda.driver"}


def module_status(name):
    """{"ok", "version"|"error"} for importing ``name``: an import can crash more than one way."""
    try:
        importlib.import_module(IMPORT_NAMES.get(name, name))
        module = sys.modules[name]
    except Exception as exc:  # ImportError, or a broken CUDA/driver raising something else
        return {"ok": False, "error": "{}: {}".format(type(exc).__name__, exc).splitlines()[0]}
    version = getattr(module, "__version__", None) or getattr(module, "VERSION_TEXT", None)
    return {"ok": True, "version": str(version) if version is not None else "unknown"}


def cv2_gstreamer():
    """Whether the importable cv2 has GStreamer (None when cv2 does not import)."""
    return platform_info.opencv_build_flag("GStreamer")


def gst_element_status(jetson, exists=gst.element_exists):
    """{element: present?} for every element nanoseg's pipelines use on this platform."""
    names = [name for group in gst.platform_requirements(jetson) for name in group]
    return dict((name, bool(exists(name))) for name in names)


def rtsp_server_status():
    """{"ok", "version"|"error"} for python3-gi's GstRtspServer, which --output rtsp:// needs."""
    try:
        gst_module, _ = gst.import_gst("GstRtspServer")
    except (ImportError, ValueError) as exc:
        return {"ok": False, "error": "{}: {}".format(type(exc).__name__, exc).splitlines()[0]}
    return {"ok": True, "version": gst_module.version_string()}


def rtsp_server_problem(report):
    """One line naming the apt packages when GstRtspServer does not import, or None."""
    status = report["gst_rtsp_server"]
    if status["ok"]:
        return None
    return ("python3-gi with GstRtspServer does not import ({}), --output rtsp:// needs it: "
            "sudo apt-get install {}".format(status["error"], gst.RTSP_APT_PACKAGES))


def gstreamer_element_problems(report):
    """One line naming each missing GStreamer element and its apt package, or None."""
    present = report["gst_elements"]
    unmet = gst.unmet_requirements(gst.platform_requirements(report["jetson"]),
                                   lambda name: present.get(name, False))
    if not unmet:
        return None
    packages = []
    for group in unmet:  # the first alternative's package: the preferred element
        package = gst.ELEMENT_PACKAGES.get(group[0])
        if package and package not in packages:
            packages.append(package)
    return "GStreamer elements missing: {}{}".format(
        ", ".join(gst.describe_requirement(group) for group in unmet),
        ": sudo apt-get install " + " ".join(packages) if packages else "")


def parse_power_mode(text):
    """``NV Power Mode: MAXN\\n0`` (nvpmodel -q) -> {"name": "MAXN", "id": 0}."""
    match = re.search(r"NV Power Mode:\s*(\S+)\s*(\d+)?", text or "")
    if not match:
        return None
    return {"name": match.group(1),
            "id": int(match.group(2)) if match.group(2) is not None else None}


def power_mode():
    """The nvpmodel power mode, or None off a Jetson (mode 0 = MAXN, 10 W on the Nano)."""
    return parse_power_mode(_command_output(["nvpmodel", "-q"]))


def collect_report(release_file=TEGRA_RELEASE):
    """Everything the report shows, as a JSON-ready dict."""
    l4t = read_tegra_release(release_file)
    package = l4t_core_package_version() if l4t else None
    return {
        "jetson": l4t is not None,
        "release_file": release_file,
        "l4t": l4t,
        "l4t_supported": l4t_supported(l4t),
        "l4t_core_package": package,
        "l4t_core_matches": l4t_core_matches(l4t, package),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_supported": tuple(sys.version_info[:2]) == SUPPORTED_PYTHON,
        "modules": {name: module_status(name) for name in ("numpy", "cv2", "tensorrt",
                                                             "pycuda")},
        "cv2_gstreamer": cv2_gstreamer(),
        "gst_elements": gst_element_status(l4t is not None),
        "gst_missing_features": [{"option": option, "missing": names} for option, names in
                                 gst.missing_features(l4t is not None)],
        "gst_rtsp_server": rtsp_server_status(),
        "power_mode": power_mode() if l4t else None,
    }


def failed_checks(report, checks):
    """One-line problems (each naming the fix) for the requested ``checks``."""
    problems = []
    for check in checks:
        if check == "l4t" and not report["jetson"]:
            problems.append("not a Jetson: {} is missing (this setup is for a Jetson Nano on "
                            "JetPack 4.6.x)".format(report["release_file"]))
        elif check == "l4t" and not report["l4t_supported"]:
            l4t = report["l4t"]
            problems.append("L4T R{} (JetPack {}) is not JetPack 4.6.x (L4T R32.6/R32.7): "
                            "flash JetPack 4.6.x or expect other TensorRT/Python "
                            "versions".format(l4t["l4t"], l4t["jetpack"]))
        elif check == "l4t" and report.get("l4t_core_matches") is False:
            problems.append("{} says L4T R{} but the nvidia-l4t-core package is {}: finish the "
                            "half-done upgrade (sudo apt-get update && sudo apt-get "
                            "dist-upgrade, then reboot)".format(
                                report["release_file"], report["l4t"]["l4t"],
                                report["l4t_core_package"]))
        elif check == "python" and not report["python_supported"]:
            problems.append("python3 is {}, JetPack 4.6 ships 3.6 (TensorRT's bindings are "
                            "built for it): run with /usr/bin/python3".format(report["python"]))
        elif check in ("tensorrt", "pycuda", "cv2") and not report["modules"][check]["ok"]:
            problems.append("import {} fails ({}): {}".format(
                check, report["modules"][check]["error"], APT_HINTS[check]))
        elif check == "gstreamer" and not report["modules"]["cv2"]["ok"]:
            problems.append("cv2 does not import, so its GStreamer support is unknown: "
                            + APT_HINTS["cv2"])
        elif check == "gstreamer" and report["cv2_gstreamer"] is not True:
            problems.append("cv2 {} has no GStreamer (CSI/RTSP need it): remove pip's "
                            "opencv-python (pip3 uninstall opencv-python opencv-python-headless)"
                            " and use {}".format(report["modules"]["cv2"]["version"],
                                                 APT_HINTS["cv2"]))
        if check == "gstreamer" and gstreamer_element_problems(report):
            problems.append(gstreamer_element_problems(report))
        elif check == "rtsp-server" and rtsp_server_problem(report):
            problems.append(rtsp_server_problem(report))
    return problems


def format_report(report):
    """Human-readable lines of the report."""
    l4t = report["l4t"]
    if l4t is None:
        lines = ["platform: not a Jetson ({} is missing; machine {})".format(
            report["release_file"], report["machine"])]
    else:
        lines = ["platform: Jetson, L4T R{} -> JetPack {} ({}), board {}".format(
            l4t["l4t"], l4t["jetpack"], "supported" if report["l4t_supported"]
            else "NOT JetPack 4.6.x", l4t.get("board", "?")),
                 "nvidia-l4t-core package: {}{}".format(
                     report["l4t_core_package"] or "absent", {
                         True: " (matches)", None: "",
                         False: " (DIFFERS from {}: a half-done upgrade? finish it with sudo "
                                "apt-get dist-upgrade, then reboot)".format(
                                    report["release_file"])}[report["l4t_core_matches"]])]
    lines.append("python: {}{}".format(report["python"], "" if report["python_supported"]
                                       else " (JetPack 4.6 uses 3.6)"))
    for name, status in sorted(report["modules"].items()):
        lines.append("{}: {}".format(name, status["version"] if status["ok"]
                                     else "missing ({})".format(status["error"])))
    cv2_gst = report["cv2_gstreamer"]
    lines.append("cv2 GStreamer: {}".format(
        {True: "yes", False: "NO", None: "unknown"}[cv2_gst]))
    missing = sorted(name for name, ok in report["gst_elements"].items() if not ok)
    lines.append("GStreamer elements: {}".format(
        "missing " + gst.describe_missing(missing) if missing
        else "all {} present".format(len(report["gst_elements"]))))
    lines.extend(feature_lines(report.get("gst_missing_features", [])))
    server = report["gst_rtsp_server"]
    lines.append("GStreamer RTSP server (python3-gi): {}".format(
        server["version"] if server["ok"] else "missing ({}): sudo apt-get install {}".format(
            server["error"], gst.RTSP_APT_PACKAGES)))
    mode = report["power_mode"]
    if mode is not None:
        advice = "" if mode["id"] == 0 else " (for full speed: sudo nvpmodel -m 0)"
        lines.append("power mode: {} ({}){}".format(mode["name"], mode["id"], advice))
    return lines


def feature_lines(missing):
    """One line per option this GStreamer cannot run (the rest of nanoseg still runs)."""
    if not missing:
        return ["GStreamer for the camera and codec options: all present"]
    return ["{}: not available here, missing {}".format(entry["option"],
                                                        gst.describe_missing(entry["missing"]))
            for entry in missing]


def parse_args(argv=None):
    parser = make_parser(__doc__.strip().splitlines()[0])
    parser.add_argument("--release-file", default=TEGRA_RELEASE,
                        help="the L4T release file to read")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--check", action="append", choices=CHECKS, default=[],
                        help="fail (exit 2, naming the fix) unless this holds; repeatable")
    add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    setup_logging(args.log_level)
    report = collect_report(args.release_file)
    if args.check:
        problems = failed_checks(report, args.check)
        if problems:
            raise NanosegError("; ".join(problems))
        print("ok: {}".format(", ".join(args.check)))
        return 0
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print("\n".join(format_report(report)))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, parse_args))
