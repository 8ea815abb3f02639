"""The README stays true: its commands, flags and links exist.

A newcomer copies commands from the README; a renamed flag or moved script breaks them
silently unless this test reads the README's code blocks and checks each command against
the real script's ``--help``. It also pins the two set-up commands (``bash run.sh demo``,
``bash run.sh test``) and that CI runs exactly the second one. jetson/README.md gets the same
checks, and both give the Jetson steps in the only order that works (copy without building,
setup.sh on the Jetson, then the build).
"""
import math
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
JETSON_README = os.path.join(ROOT, "jetson", "README.md")
CI_SCRIPT = os.path.join(ROOT, ".ci", "run")
DEMO_COMMAND = "bash run.sh demo"
TEST_COMMAND = "bash run.sh test"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
FLAG = re.compile(r"^--[a-z0-9][a-z0-9-]*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SEPARATORS = ("&&", "||", "|", ";", ">", ">>", "2>", "&")
PYTHONS = ("python", "python3", "python3.6")
DEPLOY_BUILDS = "convert/build_engine.py"   # deploy.sh ... -- ARGS runs it with ARGS


def read(path):
    with open(path, "r") as handle:
        return handle.read()


def code_lines(markdown):
    """Every command line inside fenced code blocks, continuations joined, comments cut."""
    lines = []
    for block in FENCE.findall(markdown):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def split_words(line):
    """shlex words of a shell line; None for lines that are not shell (JSON, trees)."""
    try:
        return shlex.split(line)
    except ValueError:
        return None


def commands(lines, is_launcher):
    """(script, [--flags]) for each ``LAUNCHER script.ext --flag ...`` in ``lines``.

    Flags are collected up to a shell separator or a bare ``--`` (after which the words go
    to another program, e.g. deploy.sh's build_engine arguments).
    """
    found = []
    for line in lines:
        words = split_words(line) or []
        for index, word in enumerate(words[:-1]):
            if not is_launcher(word, words[index + 1]):
                continue
            flags = []
            for later in words[index + 2:]:
                if later in SEPARATORS or later == "--":
                    break
                if FLAG.match(later.split("=", 1)[0]):
                    flags.append(later.split("=", 1)[0])
            found.append((words[index + 1], flags))
    return found


def deploy_build_flags(lines):
    """The flags after deploy.sh's bare ``--``: it hands them to convert/build_engine.py."""
    found = []
    for line in lines:
        words = split_words(line) or []
        if "jetson/deploy.sh" in words and "--" in words:
            rest = words[words.index("--") + 1:]
            found.append((DEPLOY_BUILDS, [w for w in rest if FLAG.match(w.split("=", 1)[0])]))
    return found


def python_launcher(word, script):
    return os.path.basename(word) in PYTHONS and script.endswith(".py")


def bash_launcher(word, script):
    return word == "bash" and script.startswith("jetson/") and script.endswith(".sh")


@pytest.fixture(scope="module")
def readme():
    if not os.path.isfile(README):
        pytest.fail("README.md is missing at the repository root")
    return read(README)


@pytest.fixture(scope="module")
def lines(readme):
    return code_lines(readme)


def script_help(script, launcher):
    """The --help text of a repo script, run the way the README runs it."""
    env = dict(os.environ, SM_FRAMEWORK="tf.keras", TF_CPP_MIN_LOG_LEVEL="2",
               NO_ALBUMENTATIONS_UPDATE="1")
    result = subprocess.run(launcher + [os.path.join(ROOT, script), "--help"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=180)
    assert result.returncode == 0, "{} --help failed:\n{}".format(script, result.stdout)
    return result.stdout


def check_flags(found, launcher):
    """Every script exists and lists every flag the README gives it; -> problems."""
    problems, helps = [], {}
    for script, flags in found:
        if not os.path.isfile(os.path.join(ROOT, script)):
            problems.append("{}: no such script".format(script))
            continue
        if script not in helps:
            helps[script] = script_help(script, launcher)
        for flag in flags:
            if not re.search(r"(?<![\w-]){}(?![\w-])".format(re.escape(flag)), helps[script]):
                problems.append("{} {}: not in its --help".format(script, flag))
    return problems


def test_readme_leads_with_the_two_commands(lines):
    """The first two commands a newcomer meets are the demo and the test suite."""
    run_commands = [line for line in lines if line.startswith("bash run.sh")]
    assert run_commands[:2] == [DEMO_COMMAND, TEST_COMMAND], run_commands[:4]


def test_run_sh_knows_both_commands():
    """run.sh dispatches exactly demo and test (anything else is a usage error)."""
    result = subprocess.run(["bash", os.path.join(ROOT, "run.sh"), "no-such-command"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 2
    assert "demo|test" in result.stdout


def test_run_sh_refuses_a_venv_of_an_unsupported_python(tmp_path):
    """A leftover .venv of Python 3.12 would fail deep inside pip: say so in one line."""
    fake = tmp_path / "venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "Python 3.12.1"; exit 0; }\n'
                    'exit 1\n')
    fake.chmod(0o755)
    env = dict(os.environ, NANOSEG_VENV=str(tmp_path / "venv"))
    result = subprocess.run(["bash", os.path.join(ROOT, "run.sh"), "test"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        "error: {} was made with Python 3.12.1, but TensorFlow 2.15 needs Python 3.9-3.11: "
        "remove it (rm -rf {}) and rerun".format(env["NANOSEG_VENV"], env["NANOSEG_VENV"])]


def test_ci_runs_exactly_the_readme_test_command(lines):
    """CI and a newcomer run the same suite the same way."""
    body = [line.strip() for line in read(CI_SCRIPT).splitlines()
            if line.strip() and not line.strip().startswith("#")]
    steps = [line for line in body if not line.startswith(("set ", "cd "))]
    assert steps == [TEST_COMMAND]
    assert TEST_COMMAND in lines


def test_python_commands_name_real_scripts_and_flags(lines):
    found = commands(lines, python_launcher)
    scripts = {script for script, _ in found}
    # the journey: every CLI a user runs by hand is shown at least once
    for needed in ("train/train.py", "train/evaluate.py", "convert/export_onnx.py",
                   "convert/validate.py", "convert/build_engine.py", "edge/run_camera.py"):
        assert needed in scripts, "README shows no `python3 {}` command".format(needed)
    assert check_flags(found, [sys.executable]) == []


def test_jetson_script_commands_use_real_flags(lines):
    found = commands(lines, bash_launcher)
    assert {"jetson/setup.sh", "jetson/deploy.sh"} <= {script for script, _ in found}
    assert check_flags(found, ["bash"]) == []
    assert check_flags(deploy_build_flags(lines), [sys.executable]) == []


def test_relative_links_exist(readme):
    missing = []
    for target in LINK.findall(readme):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = os.path.join(ROOT, target.split("#", 1)[0])
        if not os.path.exists(path):
            missing.append(target)
    assert missing == []


def test_command_parser_sees_flags_and_stops_at_separators():
    """The parser itself: a wrong reading would make the checks above vacuous."""
    lines = code_lines("```bash\npython3 train/train.py --data d \\\n  --out x  # c\n"
                       "cd D && python3 edge/run_camera.py --headless | tee log\n"
                       "bash jetson/deploy.sh b u@h -- --workspace 128\n```\n")
    assert commands(lines, python_launcher) == [
        ("train/train.py", ["--data", "--out"]), ("edge/run_camera.py", ["--headless"])]
    assert commands(lines, bash_launcher) == [("jetson/deploy.sh", [])]
    assert deploy_build_flags(lines) == [(DEPLOY_BUILDS, ["--workspace"])]
    assert check_flags([("train/train.py", ["--no-such-flag"])], [sys.executable]) == [
        "train/train.py --no-such-flag: not in its --help"]


# -- the Jetson steps, in both READMEs --------------------------------------------------------
@pytest.fixture(scope="module")
def jetson_lines():
    return code_lines(read(JETSON_README))


def test_jetson_readme_commands_use_real_flags(jetson_lines):
    bash_found = commands(jetson_lines, bash_launcher)
    assert {"jetson/setup.sh", "jetson/deploy.sh"} <= {script for script, _ in bash_found}
    assert check_flags(bash_found, ["bash"]) == []
    python_found = commands(jetson_lines, python_launcher)
    assert {"jetson/check_platform.py", "convert/build_engine.py"} <= {
        script for script, _ in python_found}
    assert check_flags(python_found, [sys.executable]) == []
    assert check_flags(deploy_build_flags(jetson_lines), [sys.executable]) == []


def test_jetson_readme_links_exist():
    missing = []
    for target in LINK.findall(read(JETSON_README)):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        if not os.path.exists(os.path.join(ROOT, "jetson", target.split("#", 1)[0])):
            missing.append(target)
    assert missing == []


def launched(line):
    """(script, words) when the line runs ``bash jetson/X.sh ...``, else (None, words)."""
    words = split_words(line) or []
    for index, word in enumerate(words[:-1]):
        if bash_launcher(word, words[index + 1]):
            return words[index + 1], words
    return None, words


def jetson_step_order(lines):
    """Line numbers of the first copy-only deploy.sh, the first real setup.sh after it and
    the first building deploy.sh after that (None where a step is missing)."""
    copy = setup = build = None
    for number, line in enumerate(lines):
        script, words = launched(line)
        if "--dry-run" in words:
            continue
        if script == "jetson/deploy.sh":
            if "--no-build" in words and copy is None:
                copy = number
            elif "--no-build" not in words and setup is not None and build is None:
                build = number
        elif script == "jetson/setup.sh" and copy is not None and setup is None:
            setup = number
    return copy, setup, build


@pytest.mark.parametrize("path", [README, JETSON_README])
def test_jetson_steps_copy_then_setup_then_build(path):
    """build_engine needs the pycuda setup.sh installs, and the code arrives by deploy.sh:
    a plain deploy.sh (which builds) must come after setup.sh, after a --no-build copy."""
    lines = code_lines(read(path))
    copy, setup, build = jetson_step_order(lines)
    assert None not in (copy, setup, build), (copy, setup, build)
    building = [n for n, line in enumerate(lines) if launched(line)[0] == "jetson/deploy.sh"
                and "--no-build" not in launched(line)[1]
                and "--dry-run" not in launched(line)[1]]
    assert building[0] == build, "a building deploy.sh comes before setup.sh"


def test_jetson_step_order_parser_sees_a_wrong_order():
    wrong = code_lines("```bash\nbash jetson/setup.sh --swap 4\n"
                       "bash jetson/deploy.sh b u@h\n```\n")
    assert jetson_step_order(wrong) == (None, None, None)
    right = code_lines("```bash\nbash jetson/deploy.sh --no-build b u@h\n"
                       "bash jetson/setup.sh --dry-run\nbash jetson/setup.sh --swap 4\n"
                       "bash jetson/deploy.sh b u@h\n```\n")
    assert jetson_step_order(right) == (0, 2, 3)


@pytest.mark.parametrize("path", [README, JETSON_README])
def test_out_of_memory_workspace_is_below_the_default(path):
    """Advice to lower --workspace must name a value smaller than build_engine's default."""
    from convert.build_engine import DEFAULT_WORKSPACE_MIB
    values = []
    for line in code_lines(read(path)):
        words = split_words(line) or []
        values += [int(words[i + 1]) for i, word in enumerate(words[:-1])
                   if word == "--workspace"]
    assert values, "no --workspace example in " + path
    assert all(value < DEFAULT_WORKSPACE_MIB for value in values), values


def test_readme_vermin_command_covers_the_jetson_path(lines):
    """The README's vermin command checks the files tests/test_python36.py checks."""
    from tests.test_python36 import jetson_path_files
    vermin = [split_words(line) for line in lines if "vermin" in line and "-t=3.6-" in line]
    assert len(vermin) == 1, vermin
    files = set()
    for word in vermin[0]:
        path = os.path.join(ROOT, word)
        if word.startswith("-") or "vermin" in word or not os.path.exists(path):
            continue
        if os.path.isdir(path):
            files.update(os.path.join(path, name) for name in os.listdir(path)
                         if name.endswith(".py"))
        else:
            files.add(path)
    assert sorted(files) == jetson_path_files()


def backbone_table_rows(readme):
    """(backbone, 'HxW', gflops, lower-bound ms) of the README's backbone table."""
    rows = []
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 9 and re.match(r"^\d+x\d+$", cells[1]):
            rows.append((cells[0], cells[1], float(cells[2]), float(cells[7])))
    return rows


def test_backbone_table_nano_column_is_the_flops_estimate(readme):
    """The README's Nano figures are FLOPs / 472 GFLOP/s, as compare_backbones computes."""
    from tools.compare_backbones import DEFAULT_MODELS, nano_estimate
    rows = backbone_table_rows(readme)
    assert ["{}:{}".format(name, size) for name, size, _, _ in rows] == list(DEFAULT_MODELS)
    for name, size, gflops, lower_ms in rows:
        assert abs(nano_estimate(gflops)["lower_bound_ms"] - lower_ms) <= 0.051, name
    assert "not measurements" in readme  # the table says the Nano column is an estimate


def test_backbone_table_fps_is_rounded_from_the_ms_range(readme):
    """'(FPS)' is 1000 / the ms range, rounded once (12.55 -> 13, as every row does)."""
    from tools.compare_backbones import NANO_FP16_PEAK_FLOPS, REALISTIC_EFFICIENCY
    checked = 0
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.match(r"^(\d+)-(\d+) \((\d+)-(\d+)\)$", cells[-1]) if len(cells) == 9 \
            else None
        if not match or not re.match(r"^\d+x\d+$", cells[1]):
            continue
        lower_ms = float(cells[2]) * 1e9 / NANO_FP16_PEAK_FLOPS * 1000.0
        best, worst = (lower_ms / share for share in REALISTIC_EFFICIENCY)
        expected = [int(math.floor(value + 0.5)) for value in
                    (best, worst, 1000.0 / best, 1000.0 / worst)]
        assert [int(g) for g in match.groups()] == expected, cells[0]
        checked += 1
    assert checked == len(backbone_table_rows(readme)) > 0


def test_compare_backbones_rejects_bad_model_specs():
    from nanoseg.errors import NanosegError
    from tools.compare_backbones import parse_model_spec
    assert parse_model_spec("MobileNetV2:256x320") == ("mobilenetv2", 256, 320)
    for bad, words in (("mobilenetv2-256", "BACKBONE:HxW"), ("nosuchnet:256x256", "choose"),
                       ("resnet18:250x256", "multiples of 32")):
        with pytest.raises(NanosegError, match=words):
            parse_model_spec(bad)


def test_compare_backbones_table_rounds_fps_once_from_unrounded_times():
    """9.40 GFLOPs -> 79.66 ms at 25 % of peak -> 12.55 FPS: the table says 13, not 12."""
    from tools.compare_backbones import format_markdown
    machine = {"cpu_model": "cpu", "cpu_count": 2, "tensorflow": "2.15.1",
               "onnxruntime": "1.31.1", "date_utc": "today"}
    row = {"backbone": "efficientnetb0", "height": 256, "width": 256, "gflops": 9.40,
           "decoder_share": 0.89, "params_m": 10.12, "keras": {"median_ms": 637.0},
           "onnxruntime": None, "load_1min": 1.0}
    table = format_markdown({"machine": machine, "rows": [row], "runs": 20, "warmup": 2,
                             "load_before": 1.0})
    line = [l for l in table.splitlines() if l.startswith("| efficientnetb0")][0]
    assert line.endswith("| 19.9 | 40-80 (25-13) |"), line
    assert "| 637 | skipped |" in line
