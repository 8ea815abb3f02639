"""Running jetson/'s scripts on a PC: their paths, a command runner, and shared fixtures."""
import os
import shlex
import subprocess
import sys

import pytest

from jetson import check_platform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETSON = os.path.join(ROOT, "jetson")
SETUP = os.path.join(JETSON, "setup.sh")
DEPLOY = os.path.join(JETSON, "deploy.sh")
CHECK_PLATFORM = os.path.join(JETSON, "check_platform.py")


def run_cmd(argv, env=None, cwd=ROOT, timeout=120):
    """Run a command; return (returncode, stdout, stderr)."""
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def command_lines(stdout):
    """The commands a --dry-run printed ('+ ' lines, bash-quoted), unquoted and re-joined."""
    return [" ".join(shlex.split(line[2:])) for line in stdout.splitlines()
            if line.startswith("+ ")]


@pytest.fixture(scope="module")
def python3_env(tmp_path_factory):
    """An environment whose ``python3`` is this interpreter (it has cv2 and numpy)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    os.symlink(sys.executable, str(bin_dir / "python3"))
    env = dict(os.environ)
    env["PATH"] = "{}{}{}".format(bin_dir, os.pathsep, env["PATH"])
    return env


@pytest.fixture(scope="module")
def off_jetson():
    if os.path.exists(check_platform.TEGRA_RELEASE):
        pytest.skip("this machine is a Jetson: the refusal path cannot be seen here")
