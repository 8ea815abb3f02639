"""tests/README.md's map names every module and every test file, and only ones that exist."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "tests", "README.md")
MAPPED_FOLDERS = ("nanoseg", "edge", "train", "convert", "tools", "jetson", "examples")
TEST_FOLDERS = ("", "py36/", "gst/")


def read_readme():
    with open(README) as handle:
        return handle.read()


def code_names():
    """What the map must name: each module directly in a mapped folder (a package's
    __init__.py only when it defines something), each sub-package as its folder, the
    shell scripts, demo.py and run.sh."""
    names = ["demo.py", "run.sh"]
    for folder in MAPPED_FOLDERS:
        for path in sorted(glob.glob(os.path.join(ROOT, folder, "*.py")) +
                           glob.glob(os.path.join(ROOT, folder, "*.sh"))):
            if os.path.basename(path) == "__init__.py":
                with open(path) as handle:
                    if not re.search(r"^(def|class) ", handle.read(), re.M):
                        continue
            names.append(os.path.relpath(path, ROOT).replace(os.sep, "/"))
        for init in sorted(glob.glob(os.path.join(ROOT, folder, "*", "__init__.py"))):
            names.append(os.path.relpath(os.path.dirname(init), ROOT).replace(os.sep, "/") + "/")
    return names


def existing_test_files():
    """Every test file, as the map writes it: test_x.py, py36/test_x.py, gst/test_x.py."""
    return sorted(prefix + os.path.basename(path) for prefix in TEST_FOLDERS
                  for path in glob.glob(os.path.join(ROOT, "tests", prefix, "test_*.py")))


def test_the_map_names_every_module_and_package():
    text = read_readme()
    names = code_names()
    assert "nanoseg/files.py" in names and "edge/sources/" in names  # the walk finds them
    assert "nanoseg/__init__.py" in names and "train/__init__.py" not in names
    missing = [name for name in names if "`{}`".format(name) not in text]
    assert missing == [], "add these to the map in tests/README.md: {}".format(missing)


def test_the_map_names_every_test_file():
    text = read_readme()
    files = existing_test_files()
    assert "test_files.py" in files and "py36/test_api.py" in files
    mentioned = set(re.findall(r"`((?:py36/|gst/)?test_[a-z0-9_]+\.py)`", text))
    missing = [name for name in files if name not in mentioned]
    assert missing == [], "add these to the map in tests/README.md: {}".format(missing)


def test_every_file_the_readme_names_exists():
    text = read_readme()
    stale = []
    for name in set(re.findall(r"\b((?:py36/|gst/)?test_[a-z0-9_]+\.py)\b", text)):
        if not os.path.isfile(os.path.join(ROOT, "tests", name)):
            stale.append("tests/" + name)
    folders = "|".join(MAPPED_FOLDERS)
    for name in set(re.findall(r"\b((?:%s)/[\w/-]+\.(?:py|sh|txt))" % folders, text)):
        if not os.path.isfile(os.path.join(ROOT, name)):
            stale.append(name)
    for name in set(re.findall(r"`((?:%s)/[\w/]+/)`" % folders, text)):
        if not os.path.isdir(os.path.join(ROOT, name)):
            stale.append(name)
    assert sorted(stale) == [], "tests/README.md names files that do not exist"
