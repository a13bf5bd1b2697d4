#!/usr/bin/env bash
# Copy the CIFAR-10 tarball into the git-ignored .device-data/ folder at the repo root, so that a run
# on a lent GPU machine (which reaches no network, and to which ../shared does not travel) can take
# it along: name `.device-data` in the run's `carry` and point the project's data loading at it.
#
# Usage: ci/stage_device_data.sh [SOURCE_DIR]   (from anywhere; SOURCE_DIR defaults to $CLORG_DATA, the
#                                                folder the project reads its data from, else to
#                                                ../shared/data relative to the repo root)
# The copy is checked against the known sha256, and skipped when an identical file is already there.

set -euo pipefail

FILE=cifar10-jpeg.tar.gz
SHA256=d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a

# a folder given relative to where the script was called from, as a user types it
[[ -n ${1:-} && $1 != /* ]] && set -- "$(pwd)/$1"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
SRC_DIR=${1:-${CLORG_DATA:-$(dirname "$ROOT")/shared/data}}
DEST_DIR=$ROOT/.device-data
src=$SRC_DIR/$FILE
dest=$DEST_DIR/$FILE

if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 && ! git -C "$ROOT" check-ignore -q .device-data/x; then
    echo "warning: .device-data/ is not git-ignored here; add '/.device-data/' to .gitignore or .git/info/exclude" >&2
fi

sum() { sha256sum -- "$1" | cut -d' ' -f1; }

# The device tool refuses a call whose tree is over 64 MiB (tracked and untracked-not-ignored files, and the
# carried folders): the committed weights, results, data and wheels together come close (62 MiB at 44689a5).
travel_check() {
    local limit=$((64 * 1024 * 1024)) tree carried
    # (a deleted tracked file, a missing .whl/: nothing to count, not a failure under pipefail)
    tree=$( { git ls-files -co --exclude-standard -z | xargs -0 -r stat -c %s 2>/dev/null || true; } \
        | awk '{s += $1} END {print s + 0}')
    carried=$( { du -sb .whl .device-data 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')
    awk -v t="$tree" -v c="$carried" 'BEGIN {printf "what travels to the device machine: %.1f MiB of the " \
        "64 MiB allowed (the tree %.1f, .whl and .device-data %.1f)\n", (t + c) / 2^20, t / 2^20, c / 2^20}'
    if (( tree + carried > limit )); then
        echo "error: that is over the device tool's 64 MiB, which refuses the call; the largest files of the tree:" >&2
        { git ls-files -co --exclude-standard -z | xargs -0 -r stat -c '%s %n' 2>/dev/null || true; } | sort -rn \
            | sed -n 1,5p >&2
        exit 1
    fi
}

# 1. the tarball, unless an identical copy is there; a call that fails here leaves .device-data/ as it was
if [[ -f $dest ]] && [[ $(sum "$dest") == "$SHA256" ]]; then
    echo "$dest: already there and identical (sha256 $SHA256), nothing copied"
else
    if [[ ! -f $src ]]; then
        echo "error: $src not found: give the folder that holds $FILE as the first argument, or export" \
            "CLORG_DATA=<that folder> as for the book" >&2
        exit 1
    fi
    mkdir -p "$DEST_DIR"
    tmp=$(mktemp "$DEST_DIR/.$FILE.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    cp -- "$src" "$tmp"
    chmod 644 "$tmp"
    got=$(sum "$tmp")
    if [[ $got != "$SHA256" ]]; then
        echo "error: sha256 of the copy of $src is $got, expected $SHA256" >&2
        exit 1
    fi
    mv -f -- "$tmp" "$dest"
    trap - EXIT
    echo "$dest: copied from $src ($(stat -c %s "$dest") bytes, sha256 $SHA256)"
fi

# 2. the commit the tree is sent from (the device machine gets no .git): the runs trained there record it, so
# stage again before each job. "+dirty" as clorg.core.provenance says it: the stored outputs do not count
git -C "$ROOT" rev-parse HEAD 2>/dev/null | tr -d '\n' > "$DEST_DIR/COMMIT" || true
[[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)weights' \
    2>/dev/null) ]] && printf '+dirty' >> "$DEST_DIR/COMMIT"

# 3. what travels
travel_check
