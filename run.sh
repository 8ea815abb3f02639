#!/usr/bin/env bash
# nanoseg's two set-up commands. Each creates (or reuses) ./.venv with a Python that
# TensorFlow 2.15 supports (3.9-3.11), installs requirements-desktop.txt when it changed,
# then runs:
#   bash run.sh demo [flags]   the whole journey on generated data (python3 demo.py --help)
#   bash run.sh test [args]    the test suite (args, e.g. tests/test_x.py -k y, go to pytest);
#                              first installs the gst tests' apt packages and chromium (the
#                              browser test) when missing and root (NANOSEG_SKIP_APT=1: never)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${NANOSEG_VENV:-.venv}   # NANOSEG_VENV: another environment folder
export SM_FRAMEWORK=tf.keras NO_ALBUMENTATIONS_UPDATE=1 TF_CPP_MIN_LOG_LEVEL=2
export PYTHONDONTWRITEBYTECODE=1

pick_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3.10 python3.9 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if supported_python "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  echo "error: no Python 3.9-3.11 found (TensorFlow 2.15 needs one); set PYTHON=/path/to/python3.11" >&2
  return 1
}

supported_python() {
  "$1" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null
}

ensure_venv() {
  if [ -x "$VENV/bin/python" ] && ! supported_python "$VENV/bin/python"; then
    echo "error: $VENV was made with $("$VENV/bin/python" --version 2>&1), but TensorFlow 2.15 needs Python 3.9-3.11: remove it (rm -rf $VENV) and rerun" >&2
    return 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    local python
    python=$(pick_python)
    echo "== creating $VENV with $($python --version 2>&1)"
    "$python" -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum requirements-desktop.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "== installing requirements-desktop.txt into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r requirements-desktop.txt
    echo "$want" > "$stamp"
  fi
}

# The gst tests (tests/gst, run by tests/test_gst.py under Debian's /usr/bin/python3) need
# apt's GStreamer stack. Install what is missing when we may (root, apt-get); otherwise say
# so in one line: those tests then skip with the reason (tests/test_gst.py fails instead
# where CI or NANOSEG_REQUIRE_GST=1 is set). run.sh itself never fails here.
GST_APT_PACKAGES_FILE=tests/gst/apt-packages.txt
APT_LOG=.cache/apt-install.log

missing_apt_packages() {
  local package
  sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$GST_APT_PACKAGES_FILE" | while read -r package; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || echo "$package"
  done
}

ensure_gst_packages() {
  [ "${NANOSEG_SKIP_APT:-0}" = 1 ] && return 0
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "== no dpkg here: the GStreamer tests (tests/gst) will skip (fail where CI or NANOSEG_REQUIRE_GST=1 is set)"
    return 0
  fi
  local missing
  missing=$(missing_apt_packages | tr '\n' ' ')
  [ -n "${missing// /}" ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "== the GStreamer tests will skip (fail where CI or NANOSEG_REQUIRE_GST=1 is set): apt packages missing (install as root: apt-get install $missing)"
    return 0
  fi
  echo "== installing apt packages for the GStreamer tests: $missing(log: $APT_LOG)"
  mkdir -p "$(dirname "$APT_LOG")"
  # shellcheck disable=SC2086  # one word per package
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends $missing; } >"$APT_LOG" 2>&1; then
    echo "== apt-get failed (see $APT_LOG): the GStreamer tests will skip (fail where CI or NANOSEG_REQUIRE_GST=1 is set)"
  fi
  return 0
}

# The dashboard's browser test (tests/test_viewer_dashboard.py) drives Debian's chromium
# headless; it is installed the same way (root, apt-get), else that test skips with the
# reason (fails where CI is set). Never a browser download.
BROWSER_APT_PACKAGE=chromium

ensure_browser_package() {
  [ "${NANOSEG_SKIP_APT:-0}" = 1 ] && return 0
  command -v dpkg-query >/dev/null 2>&1 || return 0
  dpkg-query -W -f='${Status}' "$BROWSER_APT_PACKAGE" 2>/dev/null \
    | grep -q "install ok installed" && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "== the browser test will skip (fail where CI is set): install as root: apt-get install $BROWSER_APT_PACKAGE"
    return 0
  fi
  echo "== installing $BROWSER_APT_PACKAGE for the browser test (log: $APT_LOG)"
  mkdir -p "$(dirname "$APT_LOG")"
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y --no-install-recommends "$BROWSER_APT_PACKAGE"; } >>"$APT_LOG" 2>&1; then
    echo "== apt-get failed (see $APT_LOG): the browser test will skip (fail where CI is set)"
  fi
  return 0
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  demo) ensure_venv; exec "$VENV/bin/python" demo.py "$@" ;;
  test) ensure_venv; ensure_gst_packages; ensure_browser_package; exec "$VENV/bin/python" -m pytest "${@:-tests}" ;;
  *) echo "usage: bash run.sh demo|test [flags]" >&2; exit 2 ;;
esac
