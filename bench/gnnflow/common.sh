# Shared set-up of bench/gnnflow/run.sh and run-M.sh (sourced, not run): the build's
# gnnflow-stream, one thread pinned to core 0 where taskset exists, a temporary folder
# removed on exit, and g = the program with --quiet --threads 1.
# Expects: $1 (BUILD_DIR, optional), $script (the caller's name for messages).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
exe="$build/tools/gnnflow-stream/gnnflow-stream"
[[ -x "$exe" ]] || { echo "$script: $exe not found (build first)" >&2; exit 2; }
export OMP_NUM_THREADS=1
pin=(taskset -c 0)
command -v taskset >/dev/null || pin=()
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
g() { "${pin[@]}" "$exe" "$@" --quiet --threads 1; }
