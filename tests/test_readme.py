"""The README and docs/ stay true: their commands, flags and links exist.

A newcomer copies commands from the README and the pages in docs/; a renamed flag or moved
script breaks them silently unless this test reads every command (fenced blocks and inline
code) and checks it against the real script's ``--help``. It also pins the two set-up
commands (``bash run.sh demo``, ``bash run.sh test``) and that CI runs exactly the second
one, keeps the README an overview (at most 200 lines, every docs page listed), resolves every
relative link and heading anchor, and keeps issue numbers out of code, docs and tests.
jetson/README.md gets the same checks, and the pages that walk through the Jetson give the
steps in the only order that works (copy without building, setup.sh on the Jetson, then the
build).
"""
import functools
import glob
import math
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCS_DIR = os.path.join(ROOT, "docs")
JETSON_README = os.path.join(ROOT, "jetson", "README.md")
JETSON_PAGE = os.path.join(DOCS_DIR, "jetson.md")
TROUBLESHOOTING_PAGE = os.path.join(DOCS_DIR, "troubleshooting.md")
BACKBONE_PAGES = [os.path.join(DOCS_DIR, "choosing-a-backbone.md"),
                  os.path.join(DOCS_DIR, "benchmarks.md")]
CI_SCRIPT = os.path.join(ROOT, ".ci", "run")
README_MAX_LINES = 200
DEMO_COMMAND = "bash run.sh demo"
TEST_COMMAND = "bash run.sh test"
# A fenced block or an inline code span (which may wrap lines, never across a blank line),
# in document order: fences first, so their backticks are not read as spans.
CODE = re.compile(r"^ *```[^\n]*\n(?P<block>.*?)^ *```|`(?P<span>[^`\n]+(?:\n[^`\n]+)*)`",
                  re.S | re.M)
FLAG = re.compile(r"^--[a-z0-9][a-z0-9-]*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
SEPARATORS = ("&&", "||", "|", ";", ">", ">>", "2>", "&")
PYTHONS = ("python", "python3", "python3.6")
DEPLOY_BUILDS = "convert/build_engine.py"   # deploy.sh ... -- ARGS runs it with ARGS
# The word "issue(s)" followed by a number, or "#" and a number (but not an external
# reference like numpy/numpy#18131, an HTML entity or a CSS colour such as :#111).
ISSUE_NUMBER = re.compile(r"\bissues?\s*#?\d+|(?<![\w/&:#])#\d+\b", re.I)
CODE_FOLDERS = ("nanoseg", "edge", "train", "convert", "tools", "jetson", "tests", "docs")
CODE_FILES = ("README.md", "demo.py", "run.sh", ".ci/run")


def read(path):
    with open(path, "r") as handle:
        return handle.read()


def relative(path):
    return os.path.relpath(path, ROOT)


def docs_pages():
    return sorted(glob.glob(os.path.join(DOCS_DIR, "*.md")))


def all_markdown():
    """The README, every docs page and jetson/README.md."""
    return [README] + docs_pages() + [JETSON_README]


def code_lines(markdown):
    """Every command line inside fenced blocks and inline code, in document order,
    continuations joined, comments cut."""
    lines = []
    for match in CODE.finditer(markdown):
        if match.group("block") is not None:
            block = match.group("block").replace("\\\n", " ")
            for line in block.splitlines():
                line = line.split(" #", 1)[0].strip()
                if line and not line.startswith("#"):
                    lines.append(line)
        else:
            lines.append(" ".join(match.group("span").split()))
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


@pytest.fixture(scope="module")
def every_line():
    """Command lines of the README, every docs page and jetson/README.md."""
    found = []
    for path in all_markdown():
        found += code_lines(read(path))
    return found


@functools.lru_cache(maxsize=None)
def script_help(script, launcher):
    """The --help text of a repo script, run the way the docs run it (once per script)."""
    env = dict(os.environ, SM_FRAMEWORK="tf.keras", TF_CPP_MIN_LOG_LEVEL="2",
               NO_ALBUMENTATIONS_UPDATE="1")
    result = subprocess.run(list(launcher) + [os.path.join(ROOT, script), "--help"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=180)
    assert result.returncode == 0, "{} --help failed:\n{}".format(script, result.stdout)
    return result.stdout


def check_flags(found, launcher):
    """Every script exists and lists every flag the docs give it; -> problems."""
    problems = []
    for script, flags in found:
        if not os.path.isfile(os.path.join(ROOT, script)):
            problems.append("{}: no such script".format(script))
            continue
        text = script_help(script, tuple(launcher))
        for flag in flags:
            if not re.search(r"(?<![\w-]){}(?![\w-])".format(re.escape(flag)), text):
                problems.append("{} {}: not in its --help".format(script, flag))
    return sorted(set(problems))


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown):
    """The anchors of a page's headings (fenced code is not a heading)."""
    prose = re.sub(r"^ *```.*?^ *```", "", markdown, flags=re.S | re.M)
    return {anchor(title) for title in HEADING.findall(prose)}


def broken_links(path):
    """Relative links of a markdown file whose file, or heading anchor, does not exist."""
    broken = []
    text = read(path)
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, fragment = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
            if file_part else path
        if not os.path.exists(linked):
            broken.append(target)
        elif fragment and linked.endswith(".md") and fragment not in anchors(read(linked)):
            broken.append(target)
    return broken


def test_readme_leads_with_the_two_commands(lines):
    """The first two commands a newcomer meets are the demo and the test suite."""
    run_commands = [line for line in lines if line.startswith("bash run.sh")]
    assert run_commands[:2] == [DEMO_COMMAND, TEST_COMMAND], run_commands[:4]


def test_readme_is_an_overview_of_at_most_200_lines(readme):
    assert len(readme.splitlines()) <= README_MAX_LINES


def test_readme_lists_every_docs_page(readme):
    """Each page in docs/ is reachable from the README (the links themselves must resolve:
    test_relative_links_and_anchors_resolve)."""
    linked = {os.path.normpath(os.path.join(ROOT, target.split("#", 1)[0]))
              for target in LINK.findall(readme)}
    assert docs_pages(), "docs/ holds no pages"
    assert [page for page in docs_pages() if page not in linked] == []


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


JOURNEY = ("train/train.py", "train/evaluate.py", "convert/export_onnx.py",
           "convert/validate.py", "convert/build_engine.py", "edge/run_camera.py")


def test_readme_journey_names_every_step_command(lines):
    """The README's journey shows the command of each step (details on the pages)."""
    scripts = {script for script, _ in commands(lines, python_launcher)}
    assert [needed for needed in JOURNEY if needed not in scripts] == []
    bash_scripts = {script for script, _ in commands(lines, bash_launcher)}
    assert {"jetson/setup.sh", "jetson/deploy.sh"} <= bash_scripts


def test_python_commands_name_real_scripts_and_flags(every_line):
    """Every ``python3 path/x.py --flag`` in the README, docs/ and jetson/README.md."""
    found = commands(every_line, python_launcher)
    assert len(found) > len(JOURNEY)
    assert check_flags(found, [sys.executable]) == []


def test_jetson_script_commands_use_real_flags(every_line):
    found = commands(every_line, bash_launcher)
    assert {"jetson/setup.sh", "jetson/deploy.sh"} <= {script for script, _ in found}
    assert check_flags(found, ["bash"]) == []
    assert check_flags(deploy_build_flags(every_line), [sys.executable]) == []


@pytest.mark.parametrize("path", all_markdown(), ids=relative)
def test_relative_links_and_anchors_resolve(path):
    assert broken_links(path) == []


def test_command_parser_sees_flags_and_stops_at_separators():
    """The parser itself: a wrong reading would make the checks above vacuous."""
    lines = code_lines("```bash\npython3 train/train.py --data d \\\n  --out x  # c\n"
                       "cd D && python3 edge/run_camera.py --headless | tee log\n"
                       "bash jetson/deploy.sh b u@h -- --workspace 128\n```\n"
                       "Then `python3 convert/validate.py\n--runs 5` inline.\n")
    assert commands(lines, python_launcher) == [
        ("train/train.py", ["--data", "--out"]), ("edge/run_camera.py", ["--headless"]),
        ("convert/validate.py", ["--runs"])]
    assert commands(lines, bash_launcher) == [("jetson/deploy.sh", [])]
    assert deploy_build_flags(lines) == [(DEPLOY_BUILDS, ["--workspace"])]
    assert check_flags([("train/train.py", ["--no-such-flag"])], [sys.executable]) == [
        "train/train.py --no-such-flag: not in its --help"]


def test_link_checker_sees_a_missing_file_and_a_missing_anchor(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Sources (`--source URI`)\n")
    page.write_text("[a](other.md#sources---source-uri) [b](other.md#nowhere) "
                    "[c](missing.md) [d](#own-heading) [e](https://example.com/x)\n\n"
                    "## Own heading\n")
    assert broken_links(str(page)) == ["other.md#nowhere", "missing.md"]


# -- no issue numbers --------------------------------------------------------------------------
def project_text_files():
    """Code, docs and tests: every .py, .sh and .md the project holds, plus the top files."""
    files = [os.path.join(ROOT, name) for name in CODE_FILES]
    for folder in CODE_FOLDERS:
        for current, dirs, names in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            files += [os.path.join(current, name) for name in names
                      if name.endswith((".py", ".sh", ".md"))]
    return sorted(path for path in files if os.path.isfile(path))


def test_no_issue_numbers_in_code_docs_or_tests():
    """Code and docs say what is true now; where a change came from is git's job."""
    found = []
    for path in project_text_files():
        for number, line in enumerate(read(path).splitlines(), 1):
            if ISSUE_NUMBER.search(line) or re.search(r"def test_\w*issue_?\d", line, re.I):
                found.append("{}:{}: {}".format(os.path.relpath(path, ROOT), number,
                                                line.strip()))
    assert found == []


def test_issue_number_pattern_spares_external_references():
    word, hash_mark = "issue", "#"  # spelled apart so this file passes its own check
    for bad in ("as {} 10 measured".format(word), "see {}12".format(hash_mark),
                "({}s 3)".format(word.title()), "{} {}4".format(word, hash_mark)):
        assert ISSUE_NUMBER.search(bad), bad
    for fine in ("numpy/numpy#18131", "background:#111", "&#160;", "## 1. Your data",
                 "a tissue 3 mm", "x = 1  # 2 frames"):
        assert not ISSUE_NUMBER.search(fine), fine


# -- the Jetson steps --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jetson_lines():
    return code_lines(read(JETSON_README))


def test_jetson_readme_commands_use_real_flags(jetson_lines):
    bash_found = commands(jetson_lines, bash_launcher)
    assert {"jetson/setup.sh", "jetson/deploy.sh"} <= {script for script, _ in bash_found}
    python_found = commands(jetson_lines, python_launcher)
    assert {"jetson/check_platform.py", "convert/build_engine.py"} <= {
        script for script, _ in python_found}


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


@pytest.mark.parametrize("path", [README, JETSON_PAGE, JETSON_README], ids=relative)
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


def workspace_values(path):
    values = []
    for line in code_lines(read(path)):
        words = split_words(line) or []
        values += [int(words[i + 1]) for i, word in enumerate(words[:-1])
                   if word == "--workspace" and words[i + 1].isdigit()]
    return values


@pytest.mark.parametrize("path", [JETSON_PAGE, TROUBLESHOOTING_PAGE, JETSON_README],
                         ids=relative)
def test_out_of_memory_advice_names_a_workspace(path):
    assert workspace_values(path), "no --workspace example in " + path


def test_every_workspace_example_is_below_the_default():
    """Advice to lower --workspace must name a value smaller than build_engine's default."""
    from convert.build_engine import DEFAULT_WORKSPACE_MIB
    values = [value for path in all_markdown() for value in workspace_values(path)]
    assert values and all(value < DEFAULT_WORKSPACE_MIB for value in values), values


def test_vermin_command_covers_the_jetson_path(every_line):
    """The documented vermin command checks the files tests/test_python36.py checks."""
    from tests.test_python36 import jetson_path_files
    vermin = [split_words(line) for line in every_line if "vermin" in line
              and "-t=3.6-" in line]
    assert len(vermin) == 1, vermin
    files = set()
    for word in vermin[0]:
        path = os.path.join(ROOT, word)
        if word.startswith("-") or "vermin" in word or not os.path.exists(path):
            continue
        if os.path.isdir(path):
            files.update(glob.glob(os.path.join(path, "**", "*.py"), recursive=True))
        else:
            files.add(path)
    assert sorted(files) == jetson_path_files()


# -- the backbone tables -------------------------------------------------------------------
def backbone_table_rows(markdown):
    """(backbone, 'HxW', gflops, lower-bound ms, 'ms range (FPS)') of a backbone table:
    rows whose second cell is a size; GFLOPs third, the Nano columns last."""
    rows = []
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and re.match(r"^\d+x\d+$", cells[1]):
            rows.append((cells[0], cells[1], float(cells[2]), float(cells[-2]), cells[-1]))
    return rows


@pytest.mark.parametrize("path", BACKBONE_PAGES, ids=relative)
def test_backbone_table_nano_column_is_the_flops_estimate(path):
    """The Nano figures are FLOPs / 472 GFLOP/s, as compare_backbones computes."""
    from tools.compare_backbones import DEFAULT_MODELS, nano_estimate
    markdown = read(path)
    rows = backbone_table_rows(markdown)
    assert ["{}:{}".format(name, size) for name, size, _, _, _ in rows] == list(DEFAULT_MODELS)
    for name, size, gflops, lower_ms, _ in rows:
        assert abs(nano_estimate(gflops)["lower_bound_ms"] - lower_ms) <= 0.051, name
    assert "not measurements" in markdown  # the page says the Nano column is an estimate


@pytest.mark.parametrize("path", BACKBONE_PAGES, ids=relative)
def test_backbone_table_fps_is_rounded_from_the_ms_range(path):
    """'(FPS)' is 1000 / the ms range, rounded once (12.55 -> 13, as every row does)."""
    from tools.compare_backbones import NANO_FP16_PEAK_FLOPS, REALISTIC_EFFICIENCY
    rows = backbone_table_rows(read(path))
    for name, _, gflops, _, nano_range in rows:
        match = re.match(r"^(\d+)-(\d+) \((\d+)-(\d+)\)$", nano_range)
        assert match, (name, nano_range)
        lower_ms = gflops * 1e9 / NANO_FP16_PEAK_FLOPS * 1000.0
        best, worst = (lower_ms / share for share in REALISTIC_EFFICIENCY)
        expected = [int(math.floor(value + 0.5)) for value in
                    (best, worst, 1000.0 / best, 1000.0 / worst)]
        assert [int(g) for g in match.groups()] == expected, name
    assert rows


def test_benchmarks_page_keeps_the_measured_cpu_columns():
    """The measured Keras / ONNX Runtime latencies stay with their date and machine."""
    markdown = read(BACKBONE_PAGES[1])
    assert "| Keras ms | ORT FP32 ms |" in markdown
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", markdown)


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


# -- quoted repository paths -----------------------------------------------------------------
# A word in inline code or a fenced block whose first folder is one of the repository's names
# a file or folder of the repository (a trailing "/" a folder), so it must exist: the pages
# cannot drift from the tree. User paths (`bundles/nails`, `demo_out/...`) start elsewhere;
# placeholders (`tests/test_<module>.py`) are not checked.
REPO_FOLDERS = ("nanoseg", "edge", "convert", "train", "tools", "jetson", "examples", "tests",
                "docs", ".ci")
# Dataset paths in the docs' examples that start with a split folder named like train/.
USER_PATHS = ("train/images/a.jpg", "train/masks/a.jpg", "train/val")
PLACEHOLDER = re.compile(r"[<>{}$]|\.\.\.")


def quoted_repo_paths(markdown):
    """Every word of the page's code (fenced and inline) that names a repository path."""
    paths = []
    for match in CODE.finditer(markdown):
        code = match.group("block") if match.group("block") is not None else match.group("span")
        for word in code.split():
            word = re.sub(r"'s$", "", word.strip("\"'`(),;:"))
            if word.split("/", 1)[0] in REPO_FOLDERS and "/" in word \
                    and not PLACEHOLDER.search(word) and word not in USER_PATHS:
                paths.append(word)
    return paths


def missing_paths(markdown):
    """The quoted repository paths with no such file or folder (globs must match one)."""
    return sorted(set(path for path in quoted_repo_paths(markdown)
                      if not glob.glob(os.path.join(ROOT, path))))


@pytest.mark.parametrize("path", all_markdown(), ids=relative)
def test_quoted_repository_paths_exist(path):
    assert missing_paths(read(path)) == []


def test_path_checker_sees_a_moved_file_and_a_missing_folder():
    page = ("The table is `SCHEMES` in `edge/sources/schemes.py`, one module per scheme in\n"
            "`edge/sources/`; `edge/sources.py` and `nanoseg/readers/` are gone, and\n"
            "`edge/gst.py/` is a file, not a folder. `jetson/*.sh`, `tests/test_<module>.py`,\n"
            "`bundles/nails`, `demo_out/summary.md`.\n\n"
            "```bash\npython3 train/gone.py --out runs/x  # convert/validate.py's report\n```\n")
    assert missing_paths(page) == ["edge/gst.py/", "edge/sources.py", "nanoseg/readers/",
                                   "train/gone.py"]
    assert "jetson/*.sh" in quoted_repo_paths(page)
