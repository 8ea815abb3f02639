"""jetson/deploy.sh, checked on a PC without a Jetson.

deploy.sh runs for real in --dry-run mode, and also copies for real through a stand-in
``ssh`` that runs the remote command locally.
"""
import os
import re
import stat

import pytest

from tests.conftest import HAS_TRT
from tests.jetson_helpers import DEPLOY, command_lines, run_cmd
from tests.jetson_helpers import python3_env  # noqa: F401,F811 (fixtures)


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


def test_deploy_help_lists_its_flags():
    code, out, err = run_cmd(["bash", DEPLOY, "--help"])
    assert code == 0 and err == ""
    assert "--dry-run" in out and "set -euo" not in out  # the header comment, not code
    assert "--no-build" in out and "setup.sh --swap 4" in out
