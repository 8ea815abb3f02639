"""Installing the project (pyproject.toml) gives a `nanoseg` that works from any folder.

The project is installed, offline and without its dependencies, into a fresh venv that
sees this environment's packages (numpy, OpenCV, onnxruntime, setuptools, pip) through a
.pth file; then, from a folder outside the checkout, `nanoseg.load` runs a tiny ONNX bundle.
The install reads a copy of the tree, so the build leaves nothing in the checkout.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from nanoseg.bundle import CONTRACT_JSON, ONNX, ONNX_CONTRACT
from nanoseg.contract import Contract, save_contract
from nanoseg.normalization import Normalization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("nanoseg", "edge", "train", "convert", "tools")  # pyproject.toml's list
PROJECT_FILES = ("pyproject.toml", "README.md")
SIZE = 32

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

USE_IT = """
import sys
import numpy as np
import nanoseg
frame = np.zeros((48, 64, 3), np.uint8)
frame[:, :32] = 255  # white left half: above the threshold of the mean brightness
with nanoseg.load(sys.argv[1], backend="auto") as seg:
    labels = seg.labels(frame)
print(nanoseg.__file__)
print(seg.classes, labels.shape, int(labels[:, :32].min()), int(labels[:, 32:].max()))
"""


def write_brightness_bundle(folder):
    """A bundle whose "model" is the mean of the three channels: label 1 where bright."""
    from onnx import TensorProto, helper
    os.makedirs(folder)
    contract = Contract.create(SIZE, SIZE, ["bright"], "sigmoid", Normalization.named("scale"))
    save_contract(contract, os.path.join(folder, CONTRACT_JSON))
    save_contract(contract, os.path.join(folder, ONNX_CONTRACT))
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[3], keepdims=1)],
        "brightness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("mean", TensorProto.FLOAT, [1, SIZE, SIZE, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, os.path.join(folder, ONNX))
    return folder


def copy_of_the_project(target):
    for name in PACKAGES:
        shutil.copytree(os.path.join(ROOT, name), os.path.join(target, name),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in PROJECT_FILES:
        shutil.copy(os.path.join(ROOT, name), target)
    return target


def venv_seeing_this_environment(folder):
    """A venv (no pip of its own) whose site-packages point at this environment's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True,
                   timeout=60)
    python = os.path.join(folder, "bin", "python")
    own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                        "['purelib'])"], check=True, timeout=30,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    ours = sorted(set([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    with open(os.path.join(own, "test-environment.pth"), "w") as handle:
        handle.write("\n".join(ours) + "\n")
    return python, own


def run(argv, cwd):
    env = dict((k, v) for k, v in os.environ.items() if k != "PYTHONPATH")
    return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_an_installed_nanoseg_loads_a_bundle_from_another_folder(tmp_path, editable):
    project = copy_of_the_project(str(tmp_path / "project"))
    python, site_packages = venv_seeing_this_environment(str(tmp_path / "venv"))
    bundle = write_brightness_bundle(str(tmp_path / "bundle"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    install = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
               "--no-index", "--quiet", "--disable-pip-version-check"]
    result = run(install + (["-e", project] if editable else [project]), str(elsewhere))
    assert result.returncode == 0, result.stdout + result.stderr

    result = run([python, "-c", USE_IT, bundle], str(elsewhere))
    assert result.returncode == 0, result.stderr
    where, facts = result.stdout.splitlines()[-2:]
    assert facts == "['background', 'bright'] (48, 64) 1 0"
    installed_from = project if editable else site_packages
    assert where == os.path.join(installed_from, "nanoseg", "__init__.py")
    assert not where.startswith(ROOT + os.sep)


def test_a_wheel_holds_the_layers_and_nothing_else(tmp_path):
    project = copy_of_the_project(str(tmp_path / "project"))
    result = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--no-index", "--quiet", "--disable-pip-version-check", "-w",
                  str(tmp_path / "wheels"), project], str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    wheel, = os.listdir(str(tmp_path / "wheels"))
    names = zipfile.ZipFile(str(tmp_path / "wheels" / wheel)).namelist()
    top = set(name.split("/")[0] for name in names if not name.startswith("nanoseg-"))
    assert top == set(PACKAGES)
    assert "edge/segmenter.py" in names and "edge/tensorrt/runner.py" in names
    assert "edge/viewer/static/dashboard.js" in names  # the dashboard's assets travel too
    assert all(name.endswith(".py") or name.startswith("edge/viewer/static/")
               for name in names if not name.startswith("nanoseg-"))
