"""jetson/setup.sh and requirements-jetson.txt, checked on a PC without a Jetson.

setup.sh runs for real in --dry-run mode (against stand-in /proc/swaps, /etc/fstab and nvcc
where it matters); the pins it installs are resolved for real by pip under Python 3.6.
"""
import os
import re
import sys

import pytest

from edge import gst
from tests.jetson_helpers import ROOT, SETUP, command_lines, run_cmd
from tests.jetson_helpers import off_jetson, python3_env  # noqa: F401,F811 (fixtures)

REQUIREMENTS = os.path.join(ROOT, "requirements-jetson.txt")


def test_setup_refuses_off_jetson(python3_env, off_jetson):
    code, out, err = run_cmd(["bash", SETUP, "--dry-run"], env=python3_env)
    assert code == 2
    assert err.startswith("error: not a Jetson: /etc/nv_tegra_release is missing")
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert command_lines(out) == []  # refused before printing or running anything


def test_setup_force_dry_run_prints_the_pycuda_build(python3_env, off_jetson):
    code, out, err = run_cmd(["bash", SETUP, "--force", "--dry-run"], env=python3_env)
    assert code == 0, err
    assert "not a Jetson" in err and "(continuing: --force)" in err
    assert "python3 is {}.{}".format(*sys.version_info[:2]) in err  # not 3.6: warned
    assert "export PATH=/usr/local/cuda/bin:$PATH" in out
    assert "export CPATH=/usr/local/cuda/include" in out
    assert "export LIBRARY_PATH=/usr/local/cuda/lib64" in out
    commands = command_lines(out)
    pins = read_requirements()
    assert "python3 -m pip install --user --only-binary numpy {}".format(
        pins["numpy"]) in commands
    assert "python3 -m pip install --user --no-build-isolation -r {}".format(
        REQUIREMENTS) in commands
    numpy_at = [i for i, c in enumerate(commands) if "--only-binary numpy" in c][0]
    pycuda_at = [i for i, c in enumerate(commands) if "--no-build-isolation" in c][0]
    assert numpy_at < pycuda_at, "pycuda must build against the pinned numpy"
    assert not any("opencv" in c for c in commands), "never pip-install OpenCV on a Jetson"
    assert not any("swap" in c for c in commands)  # only with --swap
    assert "sudo nvpmodel -m 0" in out and "sudo jetson_clocks" in out
    assert "dry run: nothing was changed" in out


@pytest.fixture()
def swap_state(python3_env, tmp_path):
    """Run setup.sh --dry-run --swap 1 against a stand-in /proc/swaps and /etc/fstab."""
    swap = tmp_path / "swapfile"
    proc_swaps, fstab = tmp_path / "swaps", tmp_path / "fstab"
    proc_swaps.write_text("Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n")
    fstab.write_text("/dev/root / ext4 defaults 0 1\n")
    env = dict(python3_env, NANOSEG_PROC_SWAPS=str(proc_swaps), NANOSEG_FSTAB=str(fstab))

    def run_setup(*extra):
        argv = ["bash", SETUP, "--force", "--dry-run", "--swap", "1", "--swap-file",
                str(swap)] + list(extra)
        code, out, err = run_cmd(argv, env=env)
        assert code == 0, err
        return out, command_lines(out)

    def make_swap_file(size):  # sparse: no real GB written
        with open(str(swap), "wb") as handle:
            handle.truncate(size)

    def activate():  # what the kernel lists once swapon succeeded
        with open(str(proc_swaps), "a") as handle:
            handle.write("{}\tfile\t1048572\t0\t-2\n".format(swap))
    return dict(swap=swap, fstab=fstab, run=run_setup, make=make_swap_file,
                activate=activate)


def swap_commands(commands):
    return [c.split()[1] for c in commands
            if c.startswith("sudo ") and c.split()[1] in ("swapoff", "rm", "fallocate",
                                                          "chmod", "mkswap", "swapon")]


def test_setup_swap_new_file_before_the_pycuda_build(swap_state):
    swap = swap_state["swap"]
    out, commands = swap_state["run"]()
    assert swap_commands(commands) == ["fallocate", "chmod", "mkswap", "swapon"]
    assert "sudo fallocate -l 1G {}".format(swap) in commands
    assert "sudo mkswap {}".format(swap) in commands
    assert "sudo swapon {}".format(swap) in commands
    fstab_line = [i for i, c in enumerate(commands)
                  if "{} none swap sw 0 0".format(swap) in c and str(swap_state["fstab"]) in c]
    assert len(fstab_line) == 1
    swapon_at = commands.index("sudo swapon {}".format(swap))
    pycuda_at = [i for i, c in enumerate(commands) if "--no-build-isolation" in c][0]
    assert swapon_at < pycuda_at and fstab_line[0] < pycuda_at, \
        "the swap must exist before the ~10-minute pycuda compile"


def test_setup_swap_right_size_but_unformatted_is_formatted(swap_state):
    """A right-sized file not in use may never have been formatted: swapon alone would fail."""
    swap_state["make"](1 << 30)
    out, commands = swap_state["run"]()
    assert "already has 1 GB but is not in use" in out
    assert swap_commands(commands) == ["chmod", "mkswap", "swapon"]


def test_setup_swap_in_use_with_right_size_is_left_alone(swap_state):
    swap_state["make"](1 << 30)
    swap_state["activate"]()
    with open(str(swap_state["fstab"]), "a") as handle:
        handle.write("{} none swap sw 0 0\n".format(swap_state["swap"]))
    out, commands = swap_state["run"]()
    assert "already has 1 GB and is in use" in out and "already mounts" in out
    assert not any("swap" in c or "fallocate" in c for c in commands)


@pytest.mark.parametrize("active", [True, False])
def test_setup_swap_other_size_is_recreated(swap_state, active):
    """fallocate never shrinks: a 2 GB file asked to be 1 GB is removed and made again."""
    swap_state["make"](2 << 30)
    if active:
        swap_state["activate"]()
    out, commands = swap_state["run"]()
    assert "has {} bytes, not 1 GB: recreating it".format(2 << 30) in out
    expected = ["rm", "fallocate", "chmod", "mkswap", "swapon"]
    assert swap_commands(commands) == (["swapoff"] + expected if active else expected)
    assert "sudo rm -f {}".format(swap_state["swap"]) in commands


def test_setup_swap_file_must_be_a_file(python3_env, tmp_path):
    code, out, err = run_cmd(["bash", SETUP, "--force", "--dry-run", "--swap", "1",
                              "--swap-file", str(tmp_path)], env=python3_env)
    assert code == 2 and "exists and is not a regular file" in err
    assert not any("swap" in c for c in command_lines(out))


def fake_cuda(tmp_path, release):
    """A CUDA folder whose bin/nvcc prints what nvcc --version prints for ``release``."""
    cuda = tmp_path / "cuda-{}".format(release)
    (cuda / "bin").mkdir(parents=True)
    nvcc = cuda / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
                    "echo 'Cuda compilation tools, release {0}, V{0}.300'\n".format(release))
    nvcc.chmod(0o755)
    return cuda


def test_setup_checks_nvcc_is_cuda_10_2(python3_env, off_jetson, tmp_path):
    good = fake_cuda(tmp_path, "10.2")
    code, out, err = run_cmd(["bash", SETUP, "--force", "--dry-run", "--cuda-home", str(good)],
                             env=python3_env)
    assert code == 0, err
    assert "ok: nvcc (CUDA 10.2)" in out and "nvcc" not in err
    assert "export PATH={}/bin:$PATH".format(good) in out   # pycuda builds against it
    assert "export CPATH={}/include".format(good) in out
    wrong = fake_cuda(tmp_path, "11.4")
    code, out, err = run_cmd(["bash", SETUP, "--force", "--dry-run", "--cuda-home", str(wrong)],
                             env=python3_env)
    assert code == 0, err
    line = [l for l in err.splitlines() if "nvcc" in l]
    assert line == ["warning: {}/bin/nvcc is CUDA 11.4 ('release 10.2' not in nvcc "
                    "--version): pycuda must build against JetPack 4.6's CUDA 10.2 (sudo "
                    "apt-get install nvidia-cuda, or --cuda-home /usr/local/cuda-10.2) "
                    "(continuing: --force)".format(wrong)]
    code, out, err = run_cmd(["bash", SETUP, "--force", "--dry-run", "--cuda-home",
                              str(tmp_path / "none")], env=python3_env)
    assert code == 0 and "{}/bin/nvcc not found: install CUDA 10.2".format(tmp_path / "none") \
        in err


# What jetson/check_platform.py finds on a stock JetPack 4.6.1 image: everything setup.sh needs
# is there, but not gir1.2-gst-rtsp-server-1.0 (only --output rtsp:// needs it).
STOCK_JETPACK_STANDIN = """
import os, runpy, sys
sys.path.insert(0, {root!r})
from jetson import check_platform
from edge import gst
server = {server!r}
def report(release_file=check_platform.TEGRA_RELEASE):
    ok = {{"ok": True, "version": "1"}}
    return {{"jetson": True, "release_file": release_file, "l4t_supported": True,
            "l4t": {{"l4t": "32.7.1", "jetpack": "4.6.1"}}, "l4t_core_matches": True,
            "python_supported": True, "python": "3.6.9", "cv2_gstreamer": True,
            "modules": dict((name, ok) for name in ("numpy", "cv2", "tensorrt", "pycuda")),
            "gst_elements": dict((name, True) for group in gst.platform_requirements(True)
                                 for name in group),
            "gst_rtsp_server": server}}
check_platform.collect_report = report
sys.argv = sys.argv[1:]
sys.exit(check_platform.run(check_platform.main, check_platform.parse_args))
"""


def stock_jetpack_env(tmp_path, server):
    """An environment whose python3 answers check_platform.py as a stock JetPack would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    standin = tmp_path / "standin.py"
    standin.write_text(STOCK_JETPACK_STANDIN.format(root=ROOT, server=server))
    python3 = bin_dir / "python3"
    python3.write_text("#!/bin/sh\nexec {} {} \"$@\"\n".format(sys.executable, standin))
    python3.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = "{}{}{}".format(bin_dir, os.pathsep, env["PATH"])
    return env


def test_setup_installs_the_rtsp_server_bindings_instead_of_stopping(tmp_path):
    missing = {"ok": False, "error": "ValueError: Namespace GstRtspServer not available"}
    env = stock_jetpack_env(tmp_path, missing)
    code, out, err = run_cmd(["bash", SETUP, "--dry-run", "--cuda-home",
                              str(fake_cuda(tmp_path, "10.2"))], env=env)
    assert code == 0, err
    for check in ("l4t", "python", "tensorrt", "cv2", "gstreamer"):
        assert "ok: {}\n".format(check) in out
    assert "error" not in err
    commands = command_lines(out)
    install = "sudo apt-get install -y --no-install-recommends " + gst.RTSP_APT_PACKAGES
    assert install in commands
    pycuda_at = [i for i, c in enumerate(commands) if "--no-build-isolation" in c][0]
    assert commands.index(install) > pycuda_at  # the optional part last
    assert "only --output rtsp:// needs it" in out


def test_setup_leaves_present_rtsp_server_bindings_alone(tmp_path):
    env = stock_jetpack_env(tmp_path, {"ok": True, "version": "GStreamer 1.14.5"})
    code, out, err = run_cmd(["bash", SETUP, "--dry-run", "--cuda-home",
                              str(fake_cuda(tmp_path, "10.2"))], env=env)
    assert code == 0, err
    assert "ok: rtsp-server" in out
    assert not any("gst-rtsp-server" in c for c in command_lines(out))


def test_setup_advice_names_power_and_the_next_step(python3_env, off_jetson):
    code, out, err = run_cmd(["bash", SETUP, "--force", "--dry-run"], env=python3_env)
    assert code == 0, err
    assert "barrel jack" in out and "J48" in out and "sudo nvpmodel -m 0" in out
    next_step = out[out.index("Next"):]
    assert "bash jetson/deploy.sh BUNDLE_DIR user@jetson again" in next_step
    assert "python3 convert/build_engine.py --bundle" in next_step


@pytest.mark.parametrize("argv, message", [
    (["--swap", "four"], "--swap takes a whole number of GB, got 'four'"),
    (["--swap"], "--swap needs a size in GB"),
    (["--cuda-home"], "--cuda-home needs a folder"),
    (["--bogus"], "unknown option '--bogus'"),
])
def test_setup_bad_flags(python3_env, argv, message):
    code, _, err = run_cmd(["bash", SETUP, "--dry-run"] + argv, env=python3_env)
    assert code == 2 and message in err


# -- requirements-jetson.txt --------------------------------------------------------------
def read_requirements():
    """{name: "name==version"} of the non-comment lines."""
    pins = {}
    with open(REQUIREMENTS) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                name = re.split(r"[=<>!~ ;]", line, 1)[0].lower()
                pins[name] = line
    return pins


PYCUDA_DEPENDENCIES = {"pytools", "appdirs", "mako", "markupsafe", "platformdirs",
                       "typing-extensions", "dataclasses"}


def test_requirements_jetson_only_pip_parts():
    pins = read_requirements()
    assert set(pins) == {"numpy", "pycuda"} | PYCUDA_DEPENDENCIES
    assert all("==" in pin for pin in pins.values()), pins
    assert pins["numpy"] != "numpy==1.19.5", "1.19.5 crashes with Illegal instruction on Jetson"
    assert pins["dataclasses"].endswith('; python_version < "3.7"')  # a 3.6 backport only
    with open(REQUIREMENTS) as handle:
        comments = handle.read()
    for provided in ("tensorrt", "cv2", "CUDA 10.2", "GStreamer"):
        assert provided in comments, "say what JetPack provides instead: " + provided


def test_requirements_pycuda_dependencies_install_under_python36(python36, tmp_path):
    """pip under the Jetson's Python resolves the pins (not pycuda itself: it needs cuda.h).

    pip's resolver refuses a pin whose Requires-Python excludes 3.6 or that conflicts with
    another, and --no-deps would hide a missing one, so resolve them for real.
    """
    pins = read_requirements()
    wanted = [pins[name] for name in sorted(PYCUDA_DEPENDENCIES)]
    code, out, err = run_cmd([python36, "-m", "pip", "download", "--quiet", "--dest",
                              str(tmp_path), "--python-version", "3.6", "--only-binary",
                              ":all:", "--platform", "manylinux2014_aarch64",
                              "--implementation", "cp", "--abi", "cp36m", "--abi", "none",
                              "--platform", "any"] + [w for w in wanted if "pytools" not in w],
                             timeout=600)
    if code != 0 and ("NewConnectionError" in err or "Max retries" in err):
        pytest.skip("no package index reachable: " + err.strip().splitlines()[-1])
    assert code == 0, err
    # pytools has no wheel: resolve it (with its dependencies, all pinned) for this 3.6
    code, out, err = run_cmd([python36, "-m", "pip", "download", "--quiet", "--dest",
                              str(tmp_path), "--no-build-isolation"] + wanted, timeout=600)
    assert code == 0, err
    downloaded = sorted(os.listdir(str(tmp_path)))
    for pin in wanted:
        name, version = pin.split(";")[0].split("==")
        stem = "{}-{}".format(name.replace("-", "_"), version).lower()
        assert any(f.lower().replace("-", "_").startswith(stem.replace("-", "_"))
                   for f in downloaded), (pin, downloaded)
    extra = [f for f in downloaded if not any(
        f.lower().replace("-", "_").startswith(p.split(";")[0].split("==")[0]
                                               .replace("-", "_").lower() + "_")
        for p in wanted)]
    assert extra == [], "a dependency of pycuda's dependencies is not pinned: {}".format(extra)


def test_setup_help_lists_its_flags():
    code, out, err = run_cmd(["bash", SETUP, "--help"])
    assert code == 0 and err == ""
    assert "--dry-run" in out and "set -euo" not in out  # the header comment, not code
    assert "--cuda-home" in out and "--swap-file" in out
