"""``bash run.sh test`` installs the gst tests' apt packages when missing, and may.

Stand-ins for dpkg-query, apt-get and id on PATH record what run.sh asks for; the venv is
this one (its requirements stamp must match, so nothing is reinstalled) and pytest runs only
``--version``. Whatever apt does, the test command itself must go on.
"""
import hashlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.dirname(os.path.dirname(sys.executable))
PACKAGES_FILE = os.path.join(ROOT, "tests", "gst", "apt-packages.txt")

FAKE_DPKG_QUERY = """#!/bin/sh
# dpkg-query -W -f=${Status} PACKAGE: installed unless PACKAGE is in $FAKE_MISSING
for word in $FAKE_MISSING; do [ "$word" = "$3" ] && exit 1; done
printf 'install ok installed'
"""
FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
[ "$1" = install ] && [ -n "$FAKE_APT_FAILS" ] && { echo "E: Unable to locate" >&2; exit 100; }
exit 0
"""
FAKE_ID = """#!/bin/sh
echo "$FAKE_UID"
"""


def venv_is_current():
    with open(os.path.join(ROOT, "requirements-desktop.txt"), "rb") as handle:
        want = hashlib.sha256(handle.read()).hexdigest()
    try:
        with open(os.path.join(VENV, ".requirements.sha256")) as handle:
            return handle.read().strip() == want
    except OSError:
        return False


def run_test_command(tmp_path, missing=(), uid=0, apt_fails=False):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (("dpkg-query", FAKE_DPKG_QUERY), ("apt-get", FAKE_APT_GET),
                       ("id", FAKE_ID)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "apt.log"
    env = dict(os.environ, PATH="{}:{}".format(bin_dir, os.environ["PATH"]),
               NANOSEG_VENV=VENV, FAKE_MISSING=" ".join(missing), FAKE_UID=str(uid),
               FAKE_LOG=str(log), FAKE_APT_FAILS="1" if apt_fails else "")
    env.pop("NANOSEG_SKIP_APT", None)
    result = subprocess.run(["bash", os.path.join(ROOT, "run.sh"), "test", "--version"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


pytestmark = pytest.mark.skipif(not venv_is_current(), reason="this venv's requirements "
                                "stamp is not current: run.sh would reinstall it")


def test_nothing_missing_means_no_apt_and_no_noise(tmp_path):
    result, calls = run_test_command(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == [] and "apt" not in result.stdout
    assert "pytest" in result.stdout + result.stderr  # the test command ran


def test_missing_packages_are_installed_as_root(tmp_path):
    result, calls = run_test_command(tmp_path, missing=("gstreamer1.0-rtsp", "python3-gi"))
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update",
                     "apt-get install -y --no-install-recommends python3-gi "
                     "gstreamer1.0-rtsp"]
    assert "installing apt packages for the GStreamer tests" in result.stdout


def test_not_root_says_so_in_one_line_and_goes_on(tmp_path):
    result, calls = run_test_command(tmp_path, missing=("python3-opencv",), uid=1000)
    assert result.returncode == 0 and calls == []
    lines = [l for l in result.stdout.splitlines() if "GStreamer tests will skip" in l]
    assert len(lines) == 1 and "apt-get install python3-opencv" in lines[0], result.stdout


def test_a_failing_apt_never_fails_the_test_command(tmp_path):
    result, calls = run_test_command(tmp_path, missing=("python3-gi",), apt_fails=True)
    assert result.returncode == 0, result.stderr
    assert calls[-1].startswith("apt-get install")
    assert "apt-get failed (see .cache/apt-install.log): the GStreamer tests will skip" \
        in result.stdout
    assert "pytest" in result.stdout + result.stderr


def test_a_missing_chromium_is_installed_for_the_browser_test_as_root(tmp_path):
    result, calls = run_test_command(tmp_path, missing=("chromium",))
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update", "apt-get install -y --no-install-recommends chromium"]
    assert "installing chromium for the browser test" in result.stdout
    (tmp_path / "user").mkdir()
    result, calls = run_test_command(tmp_path / "user", missing=("chromium",), uid=1000)
    assert calls == [] and "the browser test will skip" in result.stdout


def test_the_package_list_is_the_one_the_gst_tests_check():
    from tests.test_gst import apt_packages
    packages = apt_packages()
    for needed in ("python3-opencv", "python3-gi", "gir1.2-gst-rtsp-server-1.0",
                   "gstreamer1.0-plugins-ugly", "gstreamer1.0-libav"):
        assert needed in packages
    with open(PACKAGES_FILE) as handle:
        assert "x264" not in handle.read()  # packages, not element names
