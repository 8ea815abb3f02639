#!/usr/bin/env bash
# Prepare a Jetson Nano on JetPack 4.6.x (L4T R32.6 / R32.7) to build and run nanoseg engines.
#
#   bash jetson/setup.sh [--dry-run] [--force] [--swap GB] [--swap-file PATH]
#
# 1. checks the platform with jetson/check_platform.py: L4T R32.6/R32.7, python3 3.6, and
#    that tensorrt and cv2 import from JetPack's apt packages (python3-libnvinfer,
#    nvidia-opencv) with GStreamer in cv2. OpenCV is NEVER pip-installed here: PyPI's
#    opencv-python wheels have no GStreamer, so CSI cameras (nvarguscamerasrc) and
#    hardware-decoded RTSP would stop working, and the pip copy would shadow JetPack's.
# 2. builds pycuda against CUDA 10.2 (/usr/local/cuda) and installs the pip parts of
#    requirements-jetson.txt into ~/.local (pip3 --user; nothing system-wide);
# 3. optionally adds a swap file (TensorRT engine builds can exhaust the Nano's 4 GB);
# 4. prints the nvpmodel / jetson_clocks advice.
# --dry-run prints every command that would change the system instead of running it (the
# read-only checks still run), so the script can be reviewed, and tested, anywhere.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
REQUIREMENTS="$ROOT/requirements-jetson.txt"
CUDA_HOME=/usr/local/cuda          # JetPack 4.6 links this to /usr/local/cuda-10.2
# The last releases of the build tools that still support Python 3.6. pip 21.3.1 understands
# --no-build-isolation; setuptools >= 40.8 is needed by pycuda's pyproject.toml.
PIP_TOOLS=("pip==21.3.1" "setuptools==59.6.0" "wheel==0.37.1")

# numpy's aarch64 OpenBLAS can die with "Illegal instruction" in its CPU detection on the
# Nano (numpy/numpy#18131); set before the first python3 below imports numpy.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-ARMV8}

DRY_RUN=0
FORCE=0
SWAP_GB=0
SWAP_FILE=/swapfile

usage() {
  # the header comment, up to the first code line
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  cat <<'EOF'
options:
  --dry-run         print the commands that change the system instead of running them
  --force           continue (with warnings) when a platform check fails
  --swap GB         create a GB-sized swap file and enable it at boot (idempotent)
  --swap-file PATH  where the swap file lives (default /swapfile)
  -h, --help        this help
EOF
}

die() {
  echo "error: $*" >&2
  exit 2
}

warn() {
  echo "warning: $*" >&2
}

# run CMD...: runs it, or prints it under --dry-run
# shellcheck source=jetson/common.sh
. "$HERE/common.sh"

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) DRY_RUN=1 ;;
      --force) FORCE=1 ;;
      --swap)
        [ $# -ge 2 ] || die "--swap needs a size in GB, e.g. --swap 4"
        SWAP_GB=$2
        shift ;;
      --swap-file)
        [ $# -ge 2 ] || die "--swap-file needs a path, e.g. --swap-file /swapfile"
        SWAP_FILE=$2
        shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option '$1' (see bash jetson/setup.sh --help)" ;;
    esac
    shift
  done
  [[ "$SWAP_GB" =~ ^[0-9]+$ ]] || die "--swap takes a whole number of GB, got '$SWAP_GB'"
}

# One platform check through check_platform.py; a failure stops unless --force.
require() {
  local what=$1 message
  if message=$(python3 "$HERE/check_platform.py" --check "$what" 2>&1); then
    echo "ok: $what"
    return 0
  fi
  message=${message#error: }
  if [ "$FORCE" -eq 1 ]; then
    warn "$message (continuing: --force)"
  else
    die "$message (or rerun with --force to continue anyway)"
  fi
}

check_platform() {
  command -v python3 >/dev/null 2>&1 || die "python3 not found: JetPack 4.6 ships it (sudo apt-get install python3)"
  echo "== checking the platform"
  require l4t
  require python
  require tensorrt
  require cv2
  require gstreamer
  if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    if [ "$FORCE" -eq 1 ]; then
      warn "$CUDA_HOME/bin/nvcc not found; pycuda will not build without CUDA 10.2 (sudo apt-get install nvidia-cuda) (continuing: --force)"
    else
      die "$CUDA_HOME/bin/nvcc not found: install CUDA 10.2 with sudo apt-get install nvidia-cuda (or rerun with --force)"
    fi
  fi
}

# pycuda compiles C++ against CUDA's headers and libcuda: point the build at CUDA 10.2.
cuda_environment() {
  echo "== CUDA 10.2 paths for the pycuda build"
  export PATH="$CUDA_HOME/bin:$PATH"
  export CPATH="$CUDA_HOME/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$CUDA_HOME/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  printf 'export %s\n' "PATH=$CUDA_HOME/bin:\$PATH" "CPATH=$CPATH" \
    "LIBRARY_PATH=$LIBRARY_PATH" "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
}

install_python_packages() {
  [ -f "$REQUIREMENTS" ] || die "$REQUIREMENTS not found: run setup.sh from a full nanoseg checkout"
  echo "== pip parts of requirements-jetson.txt (pycuda builds for ~10 min on a Nano)"
  run sudo apt-get update
  run sudo apt-get install -y --no-install-recommends python3-pip python3-dev build-essential
  run python3 -m pip install --user --upgrade "${PIP_TOOLS[@]}"
  # numpy first (its pin is read from the requirements file): pycuda compiles against it.
  local numpy_pin
  numpy_pin=$(grep -E '^numpy[=<>~!]' "$REQUIREMENTS" || true)
  [ -n "$numpy_pin" ] || die "$REQUIREMENTS has no numpy pin (pycuda must build against one)"
  run python3 -m pip install --user --only-binary numpy "$numpy_pin"
  # --no-build-isolation: pycuda's pyproject asks for numpy 1.12.1 under Python 3.6, which
  # has no aarch64 wheel (pip would compile it); build against the numpy just installed.
  run python3 -m pip install --user --no-build-isolation -r "$REQUIREMENTS"
  run python3 -c "import pycuda.driver as cuda, pycuda.autoinit; print('pycuda', cuda.get_version(), 'on', pycuda.autoinit.device.name())"
}

# True when a line of FILE (/proc/swaps, /etc/fstab) starts with exactly PATH.
listed_in() {
  [ -r "$2" ] && awk -v path="$1" '$1 == path { found = 1 } END { exit !found }' "$2"
}

# Idempotent: reuse an existing swap file of the right size, add the fstab line once.
setup_swap() {
  [ "$SWAP_GB" -gt 0 ] || return 0
  echo "== swap file $SWAP_FILE (${SWAP_GB} GB)"
  local want=$((SWAP_GB * 1024 * 1024 * 1024)) have=0
  if [ -f "$SWAP_FILE" ]; then
    have=$(stat -c %s "$SWAP_FILE")
  fi
  if [ "$have" -ne "$want" ]; then
    if listed_in "$SWAP_FILE" /proc/swaps; then
      run sudo swapoff "$SWAP_FILE"
    fi
    run sudo fallocate -l "${SWAP_GB}G" "$SWAP_FILE"
    run sudo chmod 600 "$SWAP_FILE"
    run sudo mkswap "$SWAP_FILE"
  else
    echo "$SWAP_FILE already has ${SWAP_GB} GB"
  fi
  if ! listed_in "$SWAP_FILE" /proc/swaps; then
    run sudo swapon "$SWAP_FILE"
  fi
  local line="$SWAP_FILE none swap sw 0 0"
  if listed_in "$SWAP_FILE" /etc/fstab; then
    echo "/etc/fstab already mounts $SWAP_FILE"
  else
    run sudo sh -c "echo '$line' >> /etc/fstab"
  fi
}

advice() {
  local note=""
  [ "$DRY_RUN" -eq 0 ] || note=" (dry run: nothing was changed)"
  cat <<EOF
== done$note
For full speed (MAXN, 10 W; needs the 5 V 4 A barrel-jack supply, not micro-USB):
  sudo nvpmodel -m 0      # persists across reboots
  sudo jetson_clocks      # pins clocks at maximum until the next reboot
Check everything with: python3 jetson/check_platform.py
Next: on the PC, bash jetson/deploy.sh BUNDLE_DIR user@jetson (copies and builds the engine).
EOF
}

main() {
  parse_args "$@"
  check_platform
  cuda_environment
  install_python_packages
  setup_swap
  advice
}

main "$@"
