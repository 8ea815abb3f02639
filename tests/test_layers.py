"""The layers (pyproject.toml's import-linter contract): imports only go down.

nanoseg (core) <- edge (runtime) <- train (Keras) <- convert <- tools, jetson. The contract
is checked on the real tree, and on a copy with one wrong import planted, which must fail.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")
LAYER_PACKAGES = ("nanoseg", "edge", "train", "convert", "tools", "jetson")

pytestmark = pytest.mark.skipif(not os.path.isfile(LINT_IMPORTS),
                                reason="import-linter is not installed in this environment "
                                       "(requirements-desktop.txt)")


def lint_imports(root):
    """(exit status, output) of lint-imports run in ``root`` against its pyproject.toml."""
    env = dict(os.environ, PYTHONPATH=root)
    result = subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def copy_of_the_tree(tmp_path):
    for name in LAYER_PACKAGES:
        shutil.copytree(os.path.join(ROOT, name), str(tmp_path / name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), str(tmp_path))
    return tmp_path


def test_the_tree_keeps_the_layers_contract():
    status, output = lint_imports(ROOT)
    assert status == 0, output
    assert "1 kept, 0 broken" in output, output


@pytest.mark.parametrize("module, wrong_import", [
    ("nanoseg/bundle.py", "from edge import backends"),             # core -> runtime
    ("nanoseg/bundle.py", "from edge import segmenter"),            # not the API's exemption
    ("nanoseg/__init__.py", "    from edge import runtime"),        # load()'s is segmenter only
    ("edge/backends/table.py", "    from train import model"),      # runtime -> training, lazily
    ("train/model.py", "from convert import export_onnx"),          # training -> conversion
])
def test_an_upward_import_breaks_the_contract(tmp_path, module, wrong_import):
    root = copy_of_the_tree(tmp_path)
    path = root / module
    text = path.read_text()
    if wrong_import.startswith(" "):   # inside a function: import-linter reads those too
        text += "\n\ndef _planted():\n" + wrong_import + "\n"
    else:
        text += "\n" + wrong_import + "  # noqa\n"
    path.write_text(text)
    status, output = lint_imports(str(root))
    assert status != 0, output
    assert "BROKEN" in output and "1 broken" in output, output
    importer = module[:-3].replace("/", ".").replace(".__init__", "")
    assert "- {} -> ".format(importer) in output, output
