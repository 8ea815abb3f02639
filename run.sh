#!/usr/bin/env bash
# nanoseg's two set-up commands. Each creates (or reuses) ./.venv with a Python that
# TensorFlow 2.15 supports (3.9-3.11), installs requirements-desktop.txt when it changed,
# then runs:
#   bash run.sh demo [flags]   the whole journey on generated data (python3 demo.py --help)
#   bash run.sh test [args]    the test suite (args, e.g. tests/test_x.py -k y, go to pytest)
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

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  demo) ensure_venv; exec "$VENV/bin/python" demo.py "$@" ;;
  test) ensure_venv; exec "$VENV/bin/python" -m pytest "${@:-tests}" ;;
  *) echo "usage: bash run.sh demo|test [flags]" >&2; exit 2 ;;
esac
