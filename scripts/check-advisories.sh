#!/usr/bin/env bash
# `cargo deny check advisories` against the copy of the RustSec advisory
# database kept in `.ci/advisory-db/` (CI cannot reach GitHub, where the
# database lives, so cargo-deny is told not to fetch it).
#
#   scripts/check-advisories.sh            # check against the copy
#   scripts/check-advisories.sh --refresh DIR
#       replace the copy with the `crates/` folder of a newer checkout of
#       https://github.com/rustsec/advisory-db at DIR (a git work tree or
#       bare repository), then check
#
# The copy's commit and date are in `.ci/advisory-db/SNAPSHOT`; cargo-deny
# sees that date as the database's fetch time, so `maximum-db-staleness` in
# deny.toml fails the check once the copy is older than that: refresh it.
set -euo pipefail
cd "$(dirname "$0")/.."

copy=.ci/advisory-db
if [ "${1:-}" = "--refresh" ]; then
  src=${2:?usage: scripts/check-advisories.sh --refresh DIR}
  git -C "$src" archive --format=tar HEAD crates LICENSE.txt | xz -9 > "$copy/advisory-db.tar.xz"
  git -C "$src" log -1 --format='%H %cI' > "$copy/SNAPSHOT"
  echo "advisory database copy replaced: $(cat "$copy/SNAPSHOT")"
fi

read -r commit date < "$copy/SNAPSHOT"
# cargo-deny keeps each database under `db-path` (deny.toml) in a folder
# named after the URL's last segment and its XxHash64 (seed 0xca80de71) of
# the default URL, lower-cased: https://github.com/rustsec/advisory-db.
root=target/advisory-db
db="$root/advisory-db-3157b0e258782691"
rm -rf "$root"
mkdir -p "$db/.git"
tar -xJf "$copy/advisory-db.tar.xz" -C "$db"
# Its fetch time is the snapshot's commit time, not today.
touch -d "$date" "$db/.git/FETCH_HEAD"
echo "advisory database: rustsec/advisory-db $commit ($date), $(find "$db/crates" -name '*.md' | wc -l) advisories"

# `--offline` is what keeps cargo-deny from fetching the database; the
# crates themselves (every feature's) come from the registry beforehand.
cargo fetch --locked >/dev/null
cargo deny --locked --offline --all-features check advisories
