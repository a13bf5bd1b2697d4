#!/usr/bin/env bash
# Download the wheels a lent GPU machine lacks into the git-ignored .whl/ folder at the repo root.
#
# The GPU machine (see the device notes of this workplace) runs CPython 3.12 on x86-64 Linux with
# torch 2.11.0, torchvision 0.26.0, numpy 2.5.2, scipy, scikit-learn, pandas, matplotlib, seaborn,
# networkx, pyyaml, tqdm and pillow already installed, and it has no network. What clorg imports at
# run time (training and analysis without Jupyter) and the machine lacks travels as wheels: name
# `.whl` in the run's `carry` and start the command with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit;
#
# Usage: ci/fetch_device_wheels.sh        (from anywhere; PYTHON=... picks the python that runs pip)

set -euo pipefail

# NAME==VERSION of each wheel to fetch, and why it is needed. Only third-party packages that clorg
# imports and the machine does not have belong here; their own needs are checked below (--no-deps).
WHEELS=(
    # clorg.analysis.tsne: openTSNE's TSNEEmbedding, its affinities and its initialisation, for the
    # t-SNE maps of chapter 05. Same version as requirements.txt. Its needs (numpy>=1.16.6,
    # scikit-learn>=0.20, scipy) are on the machine already.
    "openTSNE==1.0.4"
)

MAX_BYTES=$((30 * 1000 * 1000))   # 30 MB: the carry limit is 64 MiB per call, data and repo included
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
PYTHON=${PYTHON:-python3}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
DEST=$ROOT/.whl
mkdir -p "$DEST"

if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 && ! git -C "$ROOT" check-ignore -q .whl/x.whl; then
    echo "warning: .whl/ is not git-ignored here; add '/.whl/' to .gitignore or .git/info/exclude" >&2
fi

# Normalized distribution name as it starts a wheel's file name: lower case, runs of -_. as one _.
norm() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | sed -E 's/[-_.]+/_/g'; }

platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for spec in "${WHEELS[@]}"; do
    name=${spec%%==*}
    version=${spec#*==}
    pinned=$(grep -iE "^${name}==" "$ROOT/requirements.txt" 2>/dev/null | head -n1 | cut -d= -f3 || true)
    if [[ -n $pinned && $pinned != "$version" ]]; then
        echo "warning: $name $version here, but requirements.txt pins $pinned" >&2
    fi

    mkdir -p "$tmp/$name"
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platform_args[@]}" -d "$tmp/$name" "$spec"
    shopt -s nullglob
    got=("$tmp/$name"/*.whl)
    shopt -u nullglob
    if (( ${#got[@]} != 1 )); then
        echo "error: expected one wheel for $spec, got ${#got[@]}" >&2
        exit 1
    fi
    file=$(basename "${got[0]}")

    # Keep one version of each package: two of them stop the whole install on the machine.
    n=$(norm "$name")
    for old in "$DEST"/*.whl; do
        [[ -e $old ]] || continue
        base=$(basename "$old")
        if [[ $(norm "${base%%-*}") == "$n" && $base != "$file" ]]; then
            echo "removing other version: $base"
            rm -f -- "$old"
        fi
    done
    mv -f -- "${got[0]}" "$DEST/$file"
    echo "$file ($(stat -c %s "$DEST/$file") bytes)"
    unzip -p "$DEST/$file" '*.dist-info/METADATA' | grep '^Requires-Dist' | grep -v 'extra ==' \
        | sed 's/^/    needs: /' || true
done

total=0
for f in "$DEST"/*.whl; do
    [[ -e $f ]] && total=$((total + $(stat -c %s "$f")))
done
awk -v t="$total" 'BEGIN { printf "total size of .whl/: %d bytes (%.1f MB)\n", t, t / 1e6 }'
if (( total > MAX_BYTES )); then
    echo "error: .whl/ holds more than $((MAX_BYTES / 1000000)) MB" >&2
    exit 1
fi
