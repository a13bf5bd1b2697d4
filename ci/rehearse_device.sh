#!/usr/bin/env bash
# Rehearse ci/device_run.sh here, on the CPU, before a GPU is lent: the same command, in a Python 3.12
# environment holding only packages of the device's list, on a copy of the tree as the device tool sends it
# (tracked and untracked-not-ignored files, plus the carried .whl/ and .device-data/), at a reduced size.
# Then the returned tarball is unpacked into a scratch results folder and the book is rendered from it
# with `make book`, as a machine without a GPU renders a GPU profile. Nothing of the real runs/ or
# results/ is touched. Not part of CI (it needs the 5 GB rehearsal environment).
#
#   ci/rehearse_device.sh [PROFILE] [BUDGET_SECONDS]        (default: gpu10 300)
#
# The rehearsal environment: REHEARSAL_VENV (default /work/py312-rehearsal), made once with
#   python3.12 -m venv /work/py312-rehearsal && /work/py312-rehearsal/bin/pip install torch==2.11.0 \
#       torchvision==0.26.0 numpy==2.5.2 scipy scikit-learn pandas matplotlib seaborn networkx pyyaml tqdm pillow
# (the device's versions of torch, torchvision and numpy; openTSNE is NOT installed there: it comes from .whl/).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PROFILE=${1:-gpu10}
BUDGET=${2:-300}
VENV=${REHEARSAL_VENV:-/work/py312-rehearsal}
[[ -x $VENV/bin/python3 ]] || { echo "no rehearsal environment at $VENV (see the header of $0)" >&2; exit 1; }
# the reduced size: a few images per class and tiny encoders, every chapter still exercised
OVERRIDES=(--override data.train_per_class=30 --override data.test_per_class=10 --override train.width_scale=0.125
           --override train.contrastive_epochs=3 --override train.supervised_epochs=3
           --override train.contrastive_batch_size=60 --override train.supervised_batch_size=60
           --override train.contrastive_warmup_epochs=1 --override train.supervised_warmup_epochs=1
           --override train.moco_queue_size=240 --override train.checkpoint_every=1 --override tsne.sample_size=200
           --override tsne.iterations=250 --override heads.seeds=2)

ci/fetch_device_wheels.sh >/dev/null
ci/stage_device_data.sh >/dev/null
scratch=$(mktemp -d /tmp/clorg-rehearsal.XXXXXX)
mkdir -p "$scratch/tree"
git ls-files -co --exclude-standard | tar cf - -T - | (cd "$scratch/tree" && tar xf -)
cp -r .whl .device-data "$scratch/tree/"
echo "rehearsal in $scratch (python: $("$VENV/bin/python3" --version))"

t0=$(date +%s)
(cd "$scratch/tree" && PATH=$VENV/bin:$PATH OUT=$scratch/out CLORG_RUNS=$scratch/runs CLORG_RESULTS=$scratch/results \
    CLORG_CACHE=$scratch/cache BENCH_SECONDS=${BENCH_SECONDS:-45} \
    ci/device_run.sh "$PROFILE" "$BUDGET" -- --allow-cpu "${OVERRIDES[@]}") || status=$?
echo "device run: exit ${status:-0} in $(( $(date +%s) - t0 )) s; files back:"
ls -l "$scratch/out"

mkdir -p "$scratch/rendered"
tar xzf "$scratch/out/results-$PROFILE.tar.gz" -C "$scratch/rendered"
t1=$(date +%s)
CLORG_DATA=$ROOT/.device-data CLORG_RESULTS=$scratch/rendered CLORG_RUNS=$scratch/no-runs make book PROFILE="$PROFILE" OVERRIDES="${OVERRIDES[*]}"
echo "rendered the book from the device tarball in $(( $(date +%s) - t1 )) s: $ROOT/_build/html/index.html"
