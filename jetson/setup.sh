#!/usr/bin/env bash
# Prepare a Jetson Nano on JetPack 4.6.x (L4T R32.6 / R32.7) to build and run nanoseg engines.
#
#   bash jetson/setup.sh [--dry-run] [--force] [--swap GB] [--swap-file PATH] [--cuda-home DIR]
#
# Run it on the Jetson in the checkout that `deploy.sh --no-build` copied (~/nanoseg), before
# any engine build: convert/build_engine.py needs the pycuda this installs.
# 1. checks the platform with jetson/check_platform.py: L4T R32.6/R32.7, python3 3.6, and
#    that tensorrt and cv2 import from JetPack's apt packages (python3-libnvinfer,
#    nvidia-opencv) with GStreamer in cv2, and that nvcc is CUDA 10.2. OpenCV is NEVER
#    pip-installed here: PyPI's opencv-python wheels have no GStreamer, so CSI cameras
#    (nvarguscamerasrc) and hardware-decoded RTSP would stop working, and the pip copy
#    would shadow JetPack's.
# 2. optionally makes a swap file first (the pycuda compile and TensorRT engine builds can
#    exhaust the Nano's 4 GB): recreated when its size differs, formatted unless in use;
# 3. builds pycuda against CUDA 10.2 (/usr/local/cuda) and installs the pip parts of
#    requirements-jetson.txt into ~/.local (pip3 --user; nothing system-wide);
# 4. installs GStreamer's RTSP server for Python (python3-gi, gir1.2-gst-rtsp-server-1.0)
#    when it does not import: stock JetPack images lack it, only --output rtsp:// needs it,
#    so a failure there is a warning, never a stop;
# 5. prints the nvpmodel / jetson_clocks advice and the next step.
# --dry-run prints every command that would change the system instead of running it (the
# read-only checks still run), so the script can be reviewed, and tested, anywhere.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
REQUIREMENTS="$ROOT/requirements-jetson.txt"
CUDA_HOME=/usr/local/cuda          # JetPack 4.6 links this to /usr/local/cuda-10.2
CUDA_RELEASE=10.2                  # JetPack 4.6.x's CUDA; pycuda and TensorRT 8.0/8.2 use it
# Where the swap state is read (overridable so the tests can show every branch anywhere).
PROC_SWAPS=${NANOSEG_PROC_SWAPS:-/proc/swaps}
FSTAB=${NANOSEG_FSTAB:-/etc/fstab}
# The last releases of the build tools that still support Python 3.6. pip 21.3.1 understands
# --no-build-isolation; setuptools >= 40.8 is needed by pycuda's pyproject.toml.
PIP_TOOLS=("pip==21.3.1" "setuptools==59.6.0" "wheel==0.37.1")
# edge/gst.py's RTSP_APT_PACKAGES: GstRtspServer for python3-gi (--output rtsp://).
RTSP_PACKAGES=(python3-gi gir1.2-gst-rtsp-server-1.0)
RTSP_SERVER_MISSING=0

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
  --cuda-home DIR   the CUDA 10.2 install pycuda builds against (default /usr/local/cuda)
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
      --cuda-home)
        [ $# -ge 2 ] || die "--cuda-home needs a folder, e.g. --cuda-home /usr/local/cuda-10.2"
        CUDA_HOME=${2%/}
        shift ;;
      -h|--help) usage; exit 0 ;;
      *) die "unknown option '$1' (see bash jetson/setup.sh --help)" ;;
    esac
    shift
  done
  [[ "$SWAP_GB" =~ ^[0-9]+$ ]] || die "--swap takes a whole number of GB, got '$SWAP_GB'"
}

# A failed platform check: stop, or warn and go on under --force.
platform_problem() {
  if [ "$FORCE" -eq 1 ]; then
    warn "$1 (continuing: --force)"
  else
    die "$1 (or rerun with --force to continue anyway)"
  fi
}

# One platform check through check_platform.py.
require() {
  local what=$1 message
  if message=$(python3 "$HERE/check_platform.py" --check "$what" 2>&1); then
    echo "ok: $what"
    return 0
  fi
  platform_problem "${message#error: }"
}

# pycuda must compile with JetPack 4.6's CUDA 10.2: `nvcc --version` says "release 10.2, V10.2.300".
check_nvcc() {
  local nvcc="$CUDA_HOME/bin/nvcc" release
  if [ ! -x "$nvcc" ]; then
    platform_problem "$nvcc not found: install CUDA $CUDA_RELEASE with sudo apt-get install nvidia-cuda (or point --cuda-home at it)"
    return 0
  fi
  release=$("$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p' || true)
  if [ "$release" = "$CUDA_RELEASE" ]; then
    echo "ok: nvcc (CUDA $CUDA_RELEASE)"
  else
    platform_problem "$nvcc is CUDA ${release:-of unknown release} ('release $CUDA_RELEASE' not in nvcc --version): pycuda must build against JetPack 4.6's CUDA $CUDA_RELEASE (sudo apt-get install nvidia-cuda, or --cuda-home /usr/local/cuda-$CUDA_RELEASE)"
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
  check_nvcc
  if python3 "$HERE/check_platform.py" --check rtsp-server >/dev/null 2>&1; then
    echo "ok: rtsp-server"
  else
    RTSP_SERVER_MISSING=1
    echo "missing: rtsp-server (optional, only --output rtsp:// needs it): installed below"
  fi
}

# pycuda compiles C++ against CUDA's headers and libcuda: point the build at CUDA 10.2.
cuda_environment() {
  echo "== CUDA $CUDA_RELEASE paths for the pycuda build"
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

# Optional: only --output rtsp:// needs it, so nothing here stops the setup.
install_rtsp_server() {
  [ "$RTSP_SERVER_MISSING" -eq 1 ] || return 0
  echo "== GStreamer's RTSP server for Python (only --output rtsp:// needs it)"
  if ! run sudo apt-get install -y --no-install-recommends "${RTSP_PACKAGES[@]}"; then
    warn "installing ${RTSP_PACKAGES[*]} failed: everything but --output rtsp:// works" \
      "(install them later)"
    return 0
  fi
  [ "$DRY_RUN" -eq 0 ] || return 0
  local message
  if message=$(python3 "$HERE/check_platform.py" --check rtsp-server 2>&1); then
    echo "ok: rtsp-server"
  else
    warn "${message#error: } (everything else works)"
  fi
}

# True when a line of FILE (/proc/swaps, /etc/fstab) starts with exactly PATH.
listed_in() {
  [ -r "$2" ] && awk -v path="$1" '$1 == path { found = 1 } END { exit !found }' "$2"
}

# Idempotent and before the pycuda build (which itself can run the Nano out of memory):
# - a swap file in use with the right size is left alone;
# - one of another size is switched off and recreated (fallocate never shrinks a file);
# - one that is not in use is (re)formatted with mkswap before swapon: a right-sized file
#   that was never formatted would make swapon fail, and reformatting an unused swap file
#   loses nothing;
# - the /etc/fstab line is added once.
setup_swap() {
  [ "$SWAP_GB" -gt 0 ] || return 0
  echo "== swap file $SWAP_FILE (${SWAP_GB} GB)"
  local want=$((SWAP_GB * 1024 * 1024 * 1024)) have=-1 active=0
  if [ -e "$SWAP_FILE" ]; then
    [ -f "$SWAP_FILE" ] || die "--swap-file $SWAP_FILE exists and is not a regular file: choose another path"
    have=$(stat -c %s "$SWAP_FILE")
  fi
  if listed_in "$SWAP_FILE" "$PROC_SWAPS"; then
    active=1
  fi
  if [ "$have" -eq "$want" ] && [ "$active" -eq 1 ]; then
    echo "$SWAP_FILE already has ${SWAP_GB} GB and is in use"
  elif [ "$have" -eq "$want" ]; then
    echo "$SWAP_FILE already has ${SWAP_GB} GB but is not in use: formatting it"
    run sudo chmod 600 "$SWAP_FILE"
    run sudo mkswap "$SWAP_FILE"
  else
    if [ "$active" -eq 1 ]; then
      run sudo swapoff "$SWAP_FILE"
      active=0
    fi
    if [ "$have" -ge 0 ]; then
      echo "$SWAP_FILE has $have bytes, not ${SWAP_GB} GB: recreating it"
      run sudo rm -f "$SWAP_FILE"
    fi
    run sudo fallocate -l "${SWAP_GB}G" "$SWAP_FILE"
    run sudo chmod 600 "$SWAP_FILE"
    run sudo mkswap "$SWAP_FILE"
  fi
  if [ "$active" -eq 0 ]; then
    run sudo swapon "$SWAP_FILE"
  fi
  local line="$SWAP_FILE none swap sw 0 0"
  if listed_in "$SWAP_FILE" "$FSTAB"; then
    echo "$FSTAB already mounts $SWAP_FILE"
  else
    run sudo sh -c "echo '$line' >> '$FSTAB'"
  fi
}

advice() {
  local note=""
  [ "$DRY_RUN" -eq 0 ] || note=" (dry run: nothing was changed)"
  cat <<EOF
== done$note
For full speed (MAXN, 10 W): power the Nano from a 5 V 4 A supply on the barrel jack (J25)
with a jumper on J48 (without it the board takes micro-USB power: enough for 5 W only), then
  sudo nvpmodel -m 0      # persists across reboots
  sudo jetson_clocks      # pins clocks at maximum until the next reboot
Check everything with: python3 jetson/check_platform.py
Next, build the engine: on the PC run bash jetson/deploy.sh BUNDLE_DIR user@jetson again
(without --no-build), or here: python3 convert/build_engine.py --bundle bundles/NAME
EOF
}

main() {
  parse_args "$@"
  check_platform
  setup_swap
  cuda_environment
  install_python_packages
  install_rtsp_server
  advice
}

main "$@"
