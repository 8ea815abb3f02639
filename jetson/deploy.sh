#!/usr/bin/env bash
# Copy nanoseg's Jetson code and a model bundle to a Jetson, then build the TensorRT engine
# there (engines are specific to the GPU and TensorRT version, so they are never copied).
#
#   bash jetson/deploy.sh [--port N] [--dest DIR] [--dry-run] [--no-build] BUNDLE_DIR user@jetson [-- BUILD_ENGINE_ARGS]
#
# Copies what jetson/jetson-files.txt lists (nanoseg/ edge/ convert/ jetson/ examples/
# requirements-jetson.txt) to DEST (default ~/nanoseg) and the
# bundle to DEST/bundles/<name>, without the Keras-only files (model.h5, weights.h5,
# saved_model/, checkpoints/) and without overwriting engines/ built earlier; uses rsync when
# both ends have it, else tar over ssh. Then checks that tensorrt and pycuda import on the
# Jetson (pycuda comes from jetson/setup.sh) and runs, there:
#   cd DEST && OPENBLAS_CORETYPE=ARMV8 python3 convert/build_engine.py --bundle bundles/<name> [BUILD_ENGINE_ARGS]
# e.g. `-- --workspace 128` when the Nano runs out of memory while building (default 256).
#
# First time on a Jetson: copy with --no-build, run `bash jetson/setup.sh --swap 4` there (in
# DEST), then run deploy.sh again without --no-build.
# --dry-run prints the commands instead of running them.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# What runs on the Jetson is defined once, in jetson/jetson-files.txt (no train/: Keras stays on
# the desktop).
CODE=()
while read -r entry; do CODE+=("$entry"); done \
  < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$HERE/jetson-files.txt")
# What build_engine.py needs from a bundle (resolve_inputs + the golden check); the names are
# nanoseg/bundle.py's CONTRACT_JSON, ONNX, ONNX_CONTRACT, GOLDEN_NPZ.
REQUIRED=(contract.json model.onnx model.contract.json golden.npz)
# Desktop-only (Keras / TensorFlow) or rebuilt on the Jetson: not copied.
EXCLUDES=(model.h5 weights.h5 saved_model checkpoints engines __pycache__ '*.pyc')

PORT=22
DEST=nanoseg
DRY_RUN=0
BUILD=1
BUNDLE=""
HOST=""
BUILD_ARGS=()

usage() {
  # the header comment, up to the first code line
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

die() {
  echo "error: $*" >&2
  exit 2
}

# run CMD...: runs it, or prints it under --dry-run
# shellcheck source=jetson/common.sh
. "$HERE/common.sh"

parse_args() {
  local positional=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --port)
        [ $# -ge 2 ] || die "--port needs a number, e.g. --port 22"
        PORT=$2
        shift ;;
      --dest)
        [ $# -ge 2 ] || die "--dest needs a folder on the Jetson, e.g. --dest nanoseg"
        DEST=$2
        shift ;;
      --dry-run) DRY_RUN=1 ;;
      --no-build) BUILD=0 ;;
      -h|--help) usage; exit 0 ;;
      --) shift; BUILD_ARGS=("$@"); break ;;
      -*) die "unknown option '$1' (see bash jetson/deploy.sh --help)" ;;
      *) positional+=("$1") ;;
    esac
    shift
  done
  [ "${#positional[@]}" -eq 2 ] || die "expected BUNDLE_DIR user@jetson, got ${#positional[@]} argument(s) (see bash jetson/deploy.sh --help)"
  BUNDLE=${positional[0]%/}
  HOST=${positional[1]}
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$PORT'"
  [[ "$HOST" =~ ^[^[:space:]@]+@[^[:space:]@]+$ || "$HOST" =~ ^[^[:space:]@-][^[:space:]@]*$ ]] \
    || die "'$HOST' is not a host: use user@jetson or an ssh config alias"
  [ -n "$DEST" ] || die "--dest must not be empty"
}

# How to make each REQUIRED file (a function, not an associative array: macOS' bash 3.2
# has no `declare -A`).
makes() {
  case "$1" in
    contract.json) echo "train it with python3 train/train.py --out $BUNDLE" ;;
    model.onnx|model.contract.json|golden.npz) echo "export it with python3 convert/export_onnx.py --bundle $BUNDLE" ;;
    *) echo "see nanoseg/bundle.py" ;;
  esac
}

# A bundle without these files cannot be built or verified.
check_bundle() {
  [ -d "$BUNDLE" ] || die "bundle folder not found: $BUNDLE (train one with python3 train/train.py --out $BUNDLE)"
  local name
  for name in "${REQUIRED[@]}"; do
    [ -f "$BUNDLE/$name" ] || die "$name is missing from bundle $BUNDLE: $(makes "$name")"
  done
}

# Bash-quote for the remote shell (ssh joins its arguments into one command line).
remote_quote() {
  printf '%q' "$1"
}

# copy_tree SUBDIR SOURCE_DIR ITEM...: SOURCE_DIR's ITEMs ("." = all of it) to DEST/SUBDIR.
copy_tree() {
  local subdir=$1 source=$2
  shift 2
  local target="$DEST${subdir:+/$subdir}" excludes=() sources=() pattern item
  run ssh -p "$PORT" "$HOST" "mkdir -p $(remote_quote "$target")"
  if [ "$USE_RSYNC" -eq 1 ]; then
    for pattern in "${EXCLUDES[@]}"; do excludes+=(--exclude "$pattern"); done
    for item in "$@"; do
      if [ "$item" = . ]; then sources+=("$source/"); else sources+=("$source/$item"); fi
    done
    run rsync -az "${excludes[@]}" -e "ssh -p $PORT" "${sources[@]}" "$HOST:$target/"
  else
    for pattern in "${EXCLUDES[@]}"; do excludes+=("--exclude=$pattern"); done
    local unpack
    unpack="tar -C $(remote_quote "$target") -xzf -"
    if [ "$DRY_RUN" -eq 1 ]; then
      printf '+ tar -C %q -czf -' "$source"
      printf ' %q' "${excludes[@]}" "$@"
      printf ' | ssh -p %q %q %q\n' "$PORT" "$HOST" "$unpack"
    else
      tar -C "$source" -czf - "${excludes[@]}" "$@" | ssh -p "$PORT" "$HOST" "$unpack"
    fi
  fi
}

# rsync must exist on both ends; otherwise tar over ssh (present on every JetPack image).
choose_copier() {
  USE_RSYNC=0
  command -v rsync >/dev/null 2>&1 || { echo "rsync not found here: copying with tar over ssh"; return 0; }
  if [ "$DRY_RUN" -eq 1 ] || ssh -p "$PORT" "$HOST" "command -v rsync" >/dev/null 2>&1; then
    USE_RSYNC=1
  else
    echo "rsync not found on $HOST: copying with tar over ssh"
  fi
}

# build_engine.py needs tensorrt (JetPack) and pycuda (jetson/setup.sh builds it): without
# them, say what to run on the Jetson instead of failing inside the build.
check_remote_imports() {
  local remote="$1 python3 jetson/check_platform.py --check tensorrt --check pycuda" message
  if [ "$DRY_RUN" -eq 1 ]; then
    run ssh -p "$PORT" "$HOST" "$remote"
    return 0
  fi
  if ! message=$(ssh -p "$PORT" "$HOST" "$remote" 2>&1); then
    message=$(printf '%s' "${message#error: }" | tr '\n' ' ')
    die "the Jetson cannot build yet (${message% }): on $HOST run 'cd $DEST && bash jetson/setup.sh --swap 4', then rerun this deploy.sh (the code and bundle are already copied)"
  fi
}

main() {
  parse_args "$@"
  check_bundle
  command -v ssh >/dev/null 2>&1 || die "ssh not found: install openssh-client"
  choose_copier
  local name
  name=$(basename "$(cd "$BUNDLE" && pwd)")
  echo "== copying nanoseg's Jetson code to $HOST:$DEST"
  copy_tree "" "$ROOT" "${CODE[@]}"
  echo "== copying bundle $BUNDLE to $HOST:$DEST/bundles/$name"
  copy_tree "bundles/$name" "$BUNDLE" .
  if [ "$BUILD" -eq 0 ]; then
    echo "== skipped the engine build (--no-build)"
    return 0
  fi
  local remote_dir bundle_arg
  remote_dir="cd $(remote_quote "$DEST") && OPENBLAS_CORETYPE=ARMV8"
  bundle_arg=$(remote_quote "bundles/$name")
  echo "== checking that tensorrt and pycuda import on $HOST"
  check_remote_imports "$remote_dir"
  echo "== building the TensorRT engine on $HOST (minutes on a Nano)"
  local remote arg
  remote="$remote_dir python3 convert/build_engine.py --bundle $bundle_arg"
  for arg in "${BUILD_ARGS[@]+"${BUILD_ARGS[@]}"}"; do remote+=" $(remote_quote "$arg")"; done
  run ssh -p "$PORT" "$HOST" "$remote"
  echo "== done: on $HOST, cd $DEST && python3 edge/run_camera.py --bundle bundles/$name --source csi://0"
}

main "$@"
