#!/usr/bin/env bash
# Static checks beyond the compilers' -Werror builds:
#   - clang's thread-safety analysis (-Wthread-safety, with -Wall -Wextra -Werror) over every
#     translation unit of build/ (its compile_commands.json), as syntax-only compiles: the
#     ABSL_GUARDED_BY / ABSL_LOCKS_EXCLUDED annotations are checked, not just written.
#
#   tools/lint.sh [build-dir]      (default build/, made by tools/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
[[ -f $build_dir/compile_commands.json ]] || {
  echo "lint: $build_dir/compile_commands.json missing (run tools/setup.sh first)" >&2
  exit 2
}
command -v clang++ >/dev/null || { echo "lint: clang++ missing (tools/setup.sh installs clang)" >&2; exit 2; }
python3 - "$build_dir" "$(nproc)" <<'PY'
import concurrent.futures, json, os, shlex, subprocess, sys
build_dir, jobs = sys.argv[1], int(sys.argv[2])
src_root = os.getcwd()
seen, todo = set(), []
for e in json.load(open(os.path.join(build_dir, "compile_commands.json"))):
    f = os.path.realpath(e["file"])
    rel = os.path.relpath(f, src_root)
    if rel.startswith("..") or rel.startswith("build"):
        continue  # generated sources (protobuf) and anything outside the tree
    cmd = shlex.split(e["command"])
    while cmd and os.path.basename(cmd[0]) == "ccache":
        cmd = cmd[1:]
    out, skip = ["clang++"], False
    for c in cmd[1:]:
        if skip:
            skip = False
            continue
        if c in ("-o", "-MT", "-MF"):
            skip = True
            continue
        if c == "-MD":
            continue
        out.append(c)
    out += ["-fsyntax-only", "-Wthread-safety", "-Wthread-safety-beta", "-Werror"]
    key = (rel, tuple(out))
    if key in seen:
        continue
    seen.add(key)
    todo.append((rel, out, e["directory"]))

def check(job):
    rel, cmd, cwd = job
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return rel, r.returncode, r.stderr

bad = 0
with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
    for rel, rc, err in ex.map(check, todo):
        if rc != 0:
            bad += 1
            sys.stdout.write(f"lint: {rel}:\n{err}\n")
print(f"lint: thread-safety analysis: {len(todo)} translation units, {bad} with errors")
sys.exit(1 if bad else 0)
PY
