"""jetson/nanoseg-camera.service and nanoseg-camera.env: the systemd unit is verified by
systemd-analyze when present and always by a strict parse whose keys and flags are checked
against edge/run_camera.py."""
import configparser
import os
import re
import shlex
import shutil

import pytest

from tests.jetson_helpers import JETSON, run_cmd

UNIT = os.path.join(JETSON, "nanoseg-camera.service")
ENV_FILE = os.path.join(JETSON, "nanoseg-camera.env")


# -- systemd unit -------------------------------------------------------------------------
def read_unit(path=UNIT):
    """Strict parse: duplicate sections/keys or a line outside a section raise."""
    parser = configparser.ConfigParser(strict=True, interpolation=None,
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    with open(path) as handle:
        parser.read_file(handle, source=path)
    return parser


def read_env_file(path=ENV_FILE):
    """KEY=value lines of a systemd EnvironmentFile."""
    values = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            assert sep and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key), \
                "{}:{}: not KEY=value: {}".format(path, number, line)
            values[key] = value
    return values


def systemd_verify(path):
    """(returncode, output) of ``systemd-analyze verify``; output lists every complaint."""
    code, out, err = run_cmd(["systemd-analyze", "verify", str(path)], timeout=60)
    return code, (out + err).strip()


@pytest.fixture(scope="module")
def systemd_analyze():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed; test_unit_strict_parse still checks "
                    "the unit")
    return shutil.which("systemd-analyze")


def test_unit_systemd_analyze_verify_is_silent(systemd_analyze):
    code, output = systemd_verify(UNIT)
    assert code == 0 and output == "", output


def test_unit_systemd_analyze_catches_a_bad_value(systemd_analyze, tmp_path):
    """verify exits 0 on a bad value but complains: the silence check above can fail."""
    with open(UNIT) as handle:
        text = handle.read()
    broken = tmp_path / "nanoseg-camera.service"
    broken.write_text(text.replace("Restart=on-failure", "Restart=sometimes"))
    code, output = systemd_verify(broken)
    assert "restart specifier" in output


def test_unit_strict_parse():
    unit = read_unit()
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    for key in ("User", "WorkingDirectory", "EnvironmentFile", "ExecStart", "RestartSec",
                "TimeoutStopSec"):
        assert service.get(key), key
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["RestartSec"]) > 0 and int(service["TimeoutStopSec"]) >= 10
    assert "network-online.target" in unit["Unit"]["After"].split()
    assert "network-online.target" in unit["Unit"]["Wants"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert os.path.isabs(service["WorkingDirectory"])
    assert shlex.split(service["ExecStart"])[:2] == ["/usr/bin/python3",
                                                     "${NANOSEG_DIR}/edge/run_camera.py"]


def test_unit_strict_parse_rejects_a_duplicate(tmp_path):
    with open(UNIT) as handle:
        text = handle.read()
    broken = tmp_path / "dup.service"
    broken.write_text(text.replace("Restart=on-failure", "Restart=on-failure\nRestart=always"))
    with pytest.raises(configparser.DuplicateOptionError):
        read_unit(str(broken))


def test_unit_and_env_use_real_run_camera_flags():
    """Every variable of ExecStart is set in the env file, and the resulting command line
    parses with edge/run_camera.py's own parser (so a renamed flag fails here)."""
    from edge import run_camera
    env = read_env_file()
    exec_start = read_unit()["Service"]["ExecStart"]
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", exec_start))
    assert used == {"NANOSEG_DIR", "NANOSEG_BUNDLE", "NANOSEG_SOURCE", "NANOSEG_ARGS"}
    assert used <= set(env), sorted(used - set(env))

    def expand(match):  # systemd: ${VAR} is one word, $VAR splits on whitespace
        value = env[match.group(2) or match.group(3)]
        return shlex.quote(value) if match.group(1) else value
    expanded = re.sub(r"(\$\{([A-Z_]+)\})|\$([A-Z_]+)", expand, exec_start)
    argv = shlex.split(expanded)[2:]
    args = run_camera.parse_args(argv)  # argparse exits on an unknown flag
    assert args.bundle == env["NANOSEG_BUNDLE"] and args.source == env["NANOSEG_SOURCE"]
    assert args.headless and args.view_port == 8080 and args.backend == "tensorrt"
    assert args.save_video.startswith(env["NANOSEG_DIR"] + "/runs/")  # ExecStartPre makes it
    assert args.view_host == "127.0.0.1", "the viewer has no password: expose it on purpose"


def test_env_relative_paths_start_at_nanoseg_dir():
    """A relative NANOSEG_BUNDLE resolves against WorkingDirectory=, which must be NANOSEG_DIR
    (systemd does not expand variables in WorkingDirectory=, so the two are kept equal)."""
    env = read_env_file()
    assert read_unit()["Service"]["WorkingDirectory"] == env["NANOSEG_DIR"]
    with open(ENV_FILE) as handle:
        text = handle.read()
    assert "relative to the unit's WorkingDirectory=" in text
