#!/usr/bin/env bash
# The declared MSRV (`rust-version` in the workspace) must be at least the
# highest `rust-version` any locked dependency declares, and the toolchain
# building here must be at least the declared one: the build that follows in
# CI then proves the declared version compiles the project. Only one
# toolchain can be installed where CI runs, so when it is newer than the
# declared version the build proves less; the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked | python3 -c '
import json, re, subprocess, sys
m = json.load(sys.stdin)
def v(s): return tuple(int(x) for x in s.split("."))[:2]
root = [p for p in m["packages"] if p["name"] == "frontdesk"][0]
declared = root["rust_version"]
used = {n["id"] for n in m["resolve"]["nodes"]}
deps = [(v(p["rust_version"]), p["name"], p["version"]) for p in m["packages"]
        if p["id"] in used and p.get("rust_version") and p["source"]]
need, name, version = max(deps)
rustc = re.search(r"rustc (\d+\.\d+)", subprocess.check_output(["rustc", "--version"], text=True)).group(1)
print(f"declared rust-version {declared}; highest among locked dependencies {need[0]}.{need[1]} ({name} {version}); toolchain {rustc}")
ok = True
if v(declared) < need:
    print(f"error: rust-version {declared} is below what {name} {version} needs ({need[0]}.{need[1]})", file=sys.stderr)
    ok = False
if v(rustc) < v(declared):
    print(f"error: toolchain {rustc} is older than the declared rust-version {declared}", file=sys.stderr)
    ok = False
elif v(rustc) > v(declared):
    print(f"note: toolchain {rustc} is newer than {declared}; the build checks {rustc}, not {declared}")
sys.exit(0 if ok else 1)
'
