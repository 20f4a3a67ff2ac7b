#!/usr/bin/env bash
# Checks locking with the compiler: runs clang's thread-safety analysis
# (-Wthread-safety, as errors) over every .cc file of the service's threaded
# components, with the flags of build/compile_commands.json (g++ flags made
# clang's). Syntax only: no code is generated, so it takes a fraction of a build.
#
# Usage: scripts/check-thread-safety.sh [FILE.cc...]
#   With no FILE, checks every .cc under $THREAD_SAFETY_DIRS (default: server
#   agent metrics storage common) that the build compiles. A FILE the build does
#   not know (a test fixture) is checked with -std=c++20 -I<repo> -I<build>/proto/gen.
# Environment: BUILD_DIR (build), CLANGXX (clang++), JOBS (nproc).
# Exits 0 when clean, 1 on a thread-safety error, 2 when it cannot run.
#
# Members a mutex guards are annotated with ABSL_GUARDED_BY, functions with
# ABSL_EXCLUSIVE_LOCKS_REQUIRED / ABSL_LOCKS_EXCLUDED (absl/base/thread_annotations.h);
# use absl::Mutex, whose lock functions are annotated (libstdc++'s std::mutex is not).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
CLANGXX=${CLANGXX:-clang++}
JOBS=${JOBS:-$(nproc)}
DIRS=${THREAD_SAFETY_DIRS:-server agent metrics storage common}
DB="$BUILD_DIR/compile_commands.json"

if ! command -v "$CLANGXX" >/dev/null 2>&1; then
  echo "check-thread-safety: $CLANGXX not found (Debian package clang; scripts/setup.sh installs it)" >&2
  exit 2
fi
if [[ ! -f $DB ]]; then
  echo "check-thread-safety: no $DB; build first (scripts/build.sh)" >&2
  exit 2
fi

# One line per file: the clang command, NUL-separated arguments, written by python
# (compile_commands.json is JSON; its commands are g++ command lines).
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$DB" "$ROOT" "$BUILD_DIR" "$CLANGXX" "$WORK" "$DIRS" "$@" <<'EOF'
import json, os, shlex, sys

db_path, root, build_dir, clangxx, work, dirs = sys.argv[1:7]
files = [os.path.abspath(f) for f in sys.argv[7:]]
dirs = [os.path.join(root, d) + os.sep for d in dirs.split()]
entries = {os.path.abspath(os.path.join(e["directory"], e["file"])): e
           for e in json.load(open(db_path))}

# Flags g++ knows and clang does not (or that only matter when generating code).
DROP_WITH_ARG = {"-o", "-MF", "-MT", "-MQ"}
DROP = {"-c", "-MD", "-MMD", "-Werror", "-Wall", "-Wextra", "-fno-semantic-interposition",
        "-fconcepts-diagnostics-depth", "-fno-gnu-unique"}
DROP_PREFIX = ("-fsanitize", "-fno-sanitize", "-Wno-maybe-uninitialized", "-fconcepts-",
               "-Wno-stringop", "-Wno-class-memaccess")

def clang_args(entry, source):
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    out, skip = [clangxx], False
    for a in args[1:]:
        if skip:
            skip = False
            continue
        if a in DROP_WITH_ARG:
            skip = True
            continue
        if a in DROP or a.startswith(DROP_PREFIX) or a == source or a == entry["file"]:
            continue
        out.append(a)
    # Only the analysis matters here: other warnings (clang's and g++'s differ)
    # are left to the real build.
    # -Wthread-safety-beta adds lock-order checks (ABSL_ACQUIRED_BEFORE).
    out += ["-fsyntax-only", "-Wno-everything", "-Wthread-safety", "-Wthread-safety-beta",
            "-Werror=thread-safety", "-Werror=thread-safety-beta", source]
    return out

if files:
    selected = files
else:
    # Files the build knows that still exist (a stale database may name removed ones).
    selected = sorted(f for f in entries
                      if f.endswith(".cc") and any(f.startswith(d) for d in dirs)
                      and os.path.exists(f))
if not selected:
    sys.exit("check-thread-safety: no files to check")
for i, source in enumerate(selected):
    entry = entries.get(source)
    if entry is None:
        entry = {"directory": root, "file": source,
                 "command": f"c++ -std=c++20 -I{root} -I{os.path.join(root, build_dir, 'proto', 'gen')} -pthread"}
    with open(os.path.join(work, f"{i:05d}.cmd"), "wb") as f:
        f.write(b"\0".join(a.encode() for a in [entry["directory"]] + clang_args(entry, source)))
EOF

# Runs one file's command (its first argument is the directory); prints its
# diagnostics and marks a failure.
check_one() {
  local cmdfile=$1 args=()
  mapfile -d '' args <"$cmdfile"
  local dir=${args[0]}
  args=("${args[@]:1}")
  if ! (cd "$dir" && "${args[@]}") >"$cmdfile.log" 2>&1; then
    echo "FAIL ${args[-1]#"$ROOT"/}"
    cat "$cmdfile.log"
    touch "$cmdfile.failed"
  elif [[ -s $cmdfile.log ]]; then
    cat "$cmdfile.log"
  fi
}
export -f check_one
export ROOT

count=$(find "$WORK" -name '*.cmd' | wc -l)
start=$SECONDS
find "$WORK" -name '*.cmd' -print0 | sort -z | xargs -0 -n1 -P "$JOBS" bash -c 'check_one "$1"' _
failed=$(find "$WORK" -name '*.failed' | wc -l)
echo "check-thread-safety: $count files, $failed failed, $((SECONDS - start)) s ($CLANGXX -Wthread-safety)"
((failed == 0)) || exit 1
