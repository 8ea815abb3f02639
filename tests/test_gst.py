"""The ``gst`` group (tests/gst) under Debian's /usr/bin/python3 with apt's GStreamer OpenCV.

pip's OpenCV (this venv's) has no GStreamer, so nanoseg's GStreamer pipelines run in a
second interpreter: the system Python with python3-opencv, python3-gi and the
gstreamer1.0-* plugins that ``bash run.sh test`` installs from apt when it may (as root).
The bundle this suite exported goes along for the tests that run edge/run_camera.py. Without
those packages this test skips and says which ones are missing, except where the GStreamer
tests must run (CI, or NANOSEG_REQUIRE_GST=1): there it fails, so a CI runner that is not
root or whose apt failed cannot go green without them.
"""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GST_PYTHON = os.environ.get("NANOSEG_GST_PYTHON", "/usr/bin/python3")
APT_PACKAGES_FILE = os.path.join(ROOT, "tests", "gst", "apt-packages.txt")
PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', "
         "'1.0'); from gi.repository import Gst, GstRtspServer; import cv2, numpy, pytest; "
         "from nanoseg.platform_info import opencv_has_gstreamer; "
         "assert opencv_has_gstreamer(), 'cv2 %s has no GStreamer' % cv2.__version__")


FALSE_WORDS = ("", "0", "false", "no", "off")


def gst_required(environ=None):
    """Whether a missing GStreamer stack must fail instead of skip.

    CI services set ``CI`` (``CI=true``); ``NANOSEG_REQUIRE_GST=1`` asks for it elsewhere.
    """
    environ = os.environ if environ is None else environ
    return any(environ.get(name, "").strip().lower() not in FALSE_WORDS
               for name in ("CI", "NANOSEG_REQUIRE_GST"))


def gst_unavailable(reason, environ=None):
    """Skip with ``reason``, or fail with it where the GStreamer tests must run."""
    if gst_required(environ):
        pytest.fail("the GStreamer tests must run here (CI or NANOSEG_REQUIRE_GST is set) but "
                    "cannot: " + reason, pytrace=False)
    pytest.skip(reason)


def apt_packages():
    with open(APT_PACKAGES_FILE) as handle:
        return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]


def missing_apt_packages():
    """The packages of tests/gst/apt-packages.txt that dpkg does not list as installed."""
    missing = []
    for package in apt_packages():
        try:
            status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                    capture_output=True, text=True, timeout=30).stdout
        except OSError:
            return None  # not a dpkg system
        if "install ok installed" not in status:
            missing.append(package)
    return missing


def gst_python_problem():
    """Why GST_PYTHON cannot run the gst group, or None."""
    if not os.path.isfile(GST_PYTHON):
        return "{} is absent".format(GST_PYTHON)
    result = subprocess.run([GST_PYTHON, "-c", PROBE], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or ["exit status {}".format(
            result.returncode)])[-1]
    return None


@pytest.fixture(scope="module")
def bundle_or_none(request):
    """The exported nails bundle, or None without ../shared/data (those tests then skip)."""
    try:
        return request.getfixturevalue("exported_nails_bundle")
    except pytest.skip.Exception:
        return None


@pytest.mark.gst
@pytest.mark.slow
def test_gst_group_passes_under_the_system_python(bundle_or_none):
    problem = gst_python_problem()
    if problem:
        missing = missing_apt_packages()
        gst_unavailable("the GStreamer tests need Debian's python3 with apt's GStreamer stack "
                    "({}); missing apt packages: {} (bash run.sh test installs them as "
                    "root)".format(problem, " ".join(missing) if missing is not None
                                   else "unknown, no dpkg here"))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("NANOSEG_TEST_BUNDLE", None)
    if bundle_or_none:
        env["NANOSEG_TEST_BUNDLE"] = bundle_or_none
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # this venv's, not apt's
        env.pop(name, None)
    result = subprocess.run(
        [GST_PYTHON, "-m", "pytest", "tests/gst", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, "GStreamer tests failed:\n" + output[-8000:]
    assert " passed" in output, output[-3000:]
    unexpected = unexpected_skips(output, have_data=bundle_or_none is not None)
    assert not unexpected, unexpected


# Why a gst test may skip on a fresh clone (no ../shared/data): the bundle the desktop suite
# trains on it is absent, or the data itself is. Under CI too: only a missing stack fails.
DATA_SKIP_REASONS = ("NANOSEG_TEST_BUNDLE is not set", "../shared/data/")


def unexpected_skips(output, have_data):
    """The ``SKIPPED`` lines of a gst run that are not allowed: with the data, every skip;
    without it, the skips for another reason than the missing data."""
    skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    if have_data:
        return skipped
    return [line for line in skipped if not any(r in line for r in DATA_SKIP_REASONS)]


@pytest.mark.parametrize("environ, required", [
    ({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False),
    ({"CI": ""}, False), ({"NANOSEG_REQUIRE_GST": "1"}, True),
    ({"NANOSEG_REQUIRE_GST": "0"}, False), ({"CI": "0", "NANOSEG_REQUIRE_GST": "1"}, True)])
def test_missing_gstreamer_fails_in_ci_and_skips_elsewhere(environ, required):
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    assert gst_required(environ) is required
    with pytest.raises(outcome, match="python3-gi is missing"):
        gst_unavailable("python3-gi is missing", environ)


GST_OUTPUT_WITHOUT_DATA = (
    "SKIPPED [2] tests/gst/conftest.py:97: NANOSEG_TEST_BUNDLE is not set: tests/test_gst.py "
    "passes the bundle the desktop suite exported (it needs ../shared/data/nails)\n"
    "SKIPPED [1] tests/gst/conftest.py:106: ../shared/data/nails is absent (a fresh clone has "
    "no shared data)\n"
    "SKIPPED [1] tests/gst/test_rtsp_source.py:78: ../shared/data/camvid-mini is absent\n"
    "12 passed, 4 skipped in 40.1s\n")


def test_a_fresh_clone_without_data_may_skip_the_data_tests_of_the_gst_group():
    assert unexpected_skips(GST_OUTPUT_WITHOUT_DATA, have_data=False) == []


def test_with_the_data_every_gst_skip_is_unexpected():
    assert len(unexpected_skips(GST_OUTPUT_WITHOUT_DATA, have_data=True)) == 3


def test_a_skip_for_another_reason_than_data_is_unexpected_without_data():
    output = GST_OUTPUT_WITHOUT_DATA + "SKIPPED [1] tests/gst/test_outputs.py:12: no x264enc\n"
    assert unexpected_skips(output, have_data=False) == [
        "SKIPPED [1] tests/gst/test_outputs.py:12: no x264enc"]
