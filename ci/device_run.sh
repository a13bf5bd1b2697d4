#!/usr/bin/env bash
# The one command a lent GPU machine runs: train a profile, compute every chapter's stored results, bring
# them back. It needs the machine's own python3 (torch and the scientific stack are there) and nothing
# else but what travels with the tree: the wheels in .whl/ (ci/fetch_device_wheels.sh) and the CIFAR-10
# tarball in .device-data/ (ci/stage_device_data.sh). No Jupyter: chapters are computed by
# `python -m clorg.book`, the same functions the notebooks call.
#
#   ci/device_run.sh PROFILE [BUDGET_SECONDS] [-- EXTRA ARGS FOR python -m clorg.book]
#   e.g. on the device tool:  run(command="ci/device_run.sh gpu10 540", carry=[".whl", ".device-data"],
#                                 timeout_s=600)
#
# Steps, each with its wall time printed as it ends (flushed, so a run cut off says where it was):
#   1. checks, within seconds: the wheels, the data tarball (sha256), python3, torch and the GPU;
#   2. installs the wheels into /tmp/site (no network, no compilation);
#   3. a short training-speed benchmark on the GPU (bf16, channels_last, with and without torch.compile),
#      capped at BENCH_SECONDS (default 60; 0 skips it);
#   4. python -m clorg.book --profile PROFILE --budget B: trains every run (stopping at the last epoch that
#      ends within the training budget, checkpointed, marked as stopped early), then computes the chapters
#      from what exists and writes results/PROFILE/summary.json;
#   5. packs results/PROFILE/ into $OUT/results-PROFILE.tar.gz.
# Under $OUT (at most 8 files, each under 16 MiB): results-PROFILE.tar.gz, run.log, bench.md, timing.md,
# machine.txt. Unpack the tarball at the project root: tar xzf results-PROFILE.tar.gz -C results/
# (or into $CLORG_RESULTS to look at it first), then `make book PROFILE=PROFILE` renders it on any machine.
# BUDGET_SECONDS (default 540) bounds steps 3-5; the training budget is TRAIN_FRACTION (default 0.55) of
# what is left after the benchmark. Exit status: 0 all done, 3 chapters skipped for time, 2 a bad profile or
# override, 1 a check failed or a step crashed (run.log says which).

set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PROFILE=${1:?usage: ci/device_run.sh PROFILE [BUDGET_SECONDS] [-- extra args for python -m clorg.book]}
BUDGET=${2:-540}
shift $(( $# >= 2 ? 2 : 1 ))
[[ ${1:-} == "--" ]] && shift
EXTRA=("$@")
OUT=${OUT:-$ROOT/device-out}
PY=${PYTHON:-python3}
BENCH_SECONDS=${BENCH_SECONDS:-60}
TRAIN_FRACTION=${TRAIN_FRACTION:-0.55}
DATA_SHA256=d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a
START=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

say() { echo "[$(( $(date +%s) - START )) s] $*"; }
fail() { say "FAILED: $*"; exit 1; }
step_start=$START
step() { local now; now=$(date +%s); say "$1 done in $(( now - step_start )) s"; echo "| $1 | $(( now - step_start )) |" >> "$OUT/timing.md"; step_start=$now; }
printf '| step | seconds |\n|---|---:|\n' > "$OUT/timing.md"

# 1. checks: everything the run needs is named before any device time goes into training
shopt -s nullglob
wheels=(.whl/*.whl)
shopt -u nullglob
(( ${#wheels[@]} )) || fail ".whl/ holds no wheels: run ci/fetch_device_wheels.sh before the lease and carry .whl"
for w in openTSNE; do
    ls .whl/ | grep -qi "^${w}-" || fail ".whl/ lacks $w: run ci/fetch_device_wheels.sh"
done
[[ -f .device-data/cifar10-jpeg.tar.gz ]] || fail ".device-data/cifar10-jpeg.tar.gz is missing: run ci/stage_device_data.sh and carry .device-data"
[[ $(sha256sum .device-data/cifar10-jpeg.tar.gz | cut -d' ' -f1) == "$DATA_SHA256" ]] \
    || fail ".device-data/cifar10-jpeg.tar.gz has the wrong sha256: run ci/stage_device_data.sh again"
command -v "$PY" >/dev/null || fail "no $PY on this machine"
"$PY" -c 'import torch' || fail "$PY cannot import torch"
{ "$PY" --version; "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'; nvidia-smi -L 2>/dev/null || true
  uname -a; nproc; free -g | head -2; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
step "checks"

# 2. the wheels
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || fail "installing .whl/ failed"
export PYTHONPATH=$ROOT/lib:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export CLORG_DATA=$ROOT/.device-data CLORG_OFFLINE=1 CLORG_CACHE=${CLORG_CACHE:-/tmp/clorg-cache}
export CLORG_RUNS=${CLORG_RUNS:-/tmp/clorg-runs} CLORG_RESULTS=${CLORG_RESULTS:-/tmp/clorg-results}
"$PY" -c "import openTSNE, clorg.book.chapters" || fail "clorg or openTSNE does not import"
step "wheels"

# 3. the training-speed benchmark, capped (it takes the run's --override pairs, nothing else)
if (( BENCH_SECONDS > 0 )); then
    overrides=()
    for (( i = 0; i < ${#EXTRA[@]}; i++ )); do
        [[ ${EXTRA[i]} == --override ]] && overrides+=(--override "${EXTRA[i + 1]}")
    done
    device=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
    timeout "$BENCH_SECONDS" "$PY" bench/train.py --profile "$PROFILE" --device "$device" --skip-augment \
        --steps 5 --warmup 2 "${overrides[@]}" > "$OUT/bench.md" 2>&1 \
        || say "benchmark cut at ${BENCH_SECONDS} s or failed (see bench.md); going on"
    step "benchmark"
fi

# 4. train and compute, within what is left of the budget (30 s are kept for packing)
left=$(( BUDGET - ($(date +%s) - START) - 30 ))
(( left > 60 )) || fail "only $left s of the budget left before training"
train=$(awk -v l="$left" -v f="$TRAIN_FRACTION" 'BEGIN { printf "%d", l * f }')
say "budget left $left s: training at most $train s, then the chapters"
"$PY" -u -m clorg.book --profile "$PROFILE" --budget "$left" --train-budget "$train" "${EXTRA[@]}"
status=$?
step "train and chapters (exit $status)"

# 5. pack what exists, even after a failure: a partial tarball says what is missing (summary.json)
if [[ -d $CLORG_RESULTS/$PROFILE ]]; then
    tar czf "$OUT/results-$PROFILE.tar.gz" --exclude='.*.lock' -C "$CLORG_RESULTS" "$PROFILE"
    say "results: $OUT/results-$PROFILE.tar.gz ($(du -h "$OUT/results-$PROFILE.tar.gz" | cut -f1))"
else
    say "no results/$PROFILE to pack"
fi
step "pack"
cat "$OUT/timing.md"
exit "$status"
