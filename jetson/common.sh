# shellcheck shell=bash
# Shared by jetson/setup.sh and jetson/deploy.sh (sourced, not run).

# Run a command, or with DRY_RUN=1 print it shell-quoted (so it can be pasted) instead.
run() {
  if [ "${DRY_RUN:-0}" -eq 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}
