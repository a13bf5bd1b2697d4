#!/usr/bin/env bash
# The one command a lent GPU machine runs: train a profile sized to the job, bring back its weights and what
# only the training machine can compute (the dynamics over the snapshots), then as many chapters as fit. It
# needs the machine's own python3 (torch and the scientific stack are there) and nothing else but what
# travels with the tree: the wheels in .whl/ (ci/fetch_device_wheels.sh) and the CIFAR-10 tarball in
# .device-data/ (ci/stage_device_data.sh). No Jupyter: ci/device_job.py calls the chapters' functions.
#
#   ci/device_run.sh PROFILE [BUDGET_SECONDS] [-- EXTRA ARGS FOR ci/device_job.py]
#   e.g. on the device tool:  run(command="ci/device_run.sh gpu10 520", carry=[".whl", ".device-data"],
#                                 timeout_s=560)
#
# 1. checks, within seconds: the wheels, the data tarball (sha256), python3, torch and the GPU;
# 2. installs the wheels into /tmp/site (no network, no compilation);
# 3. ci/device_job.py under a hard timeout (BUDGET_SECONDS minus what steps 1-2 took, minus 30 s): a probe
#    sizes the contrastive epochs to TRAIN_SECONDS (default 360), then training, then the chapters; it packs
#    after every step, overwriting the same files, so that a job cut off keeps what it finished, and once more
#    after a timeout: the classifiers chapter saves each head as it ends, and the next job resumes after it
#    (device_job.py copies the committed results/<profile>/ in first).
# Under $OUT (at most 8 files, each under 16 MiB): weights/<encoder>-<method>-<schedule>.<i>.pt (the weights, bf16
# shards), results.tar.gz, job.json (the card, the probe, E, every step's outcome), run.log.
# Back on a CPU machine: python ci/import_device_run.py <that folder> --profile PROFILE, then
# `make book PROFILE=PROFILE`. Exit status: 0 all done, 3 steps skipped or failed (job.json says which),
# 2 a bad profile, override or budget, 1 a check failed (torch seeing no GPU for a GPU profile included; or the job
# crashed outside its steps: run.log has the traceback), 124 the hard timeout, 137 killed (the timeout's kill or
# the machine's memory).

set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
USAGE="usage: ci/device_run.sh PROFILE [BUDGET_SECONDS] [-- extra args for ci/device_job.py]"
PROFILE=${1:?$USAGE}
shift
BUDGET=520
if (( $# )) && [[ $1 != "--" ]]; then BUDGET=$1; shift; fi
[[ ${1:-} == "--" ]] && shift
[[ $BUDGET =~ ^[0-9]+$ ]] || { echo "error: BUDGET_SECONDS must be whole seconds, got '$BUDGET'; $USAGE" >&2; exit 2; }
EXTRA=("$@")
OUT=${OUT:-$ROOT/device-out}
PY=${PYTHON:-python3}
TRAIN_SECONDS=${TRAIN_SECONDS:-360}
DATA_SHA256=d877bdec11f54282b92da36e9f045bd305d663b1223e3822baff39ca9ff6690a
START=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2>&1

say() { echo "[$(( $(date +%s) - START )) s] $*"; }
fail() { say "FAILED: $*"; exit 1; }
step_start=$START
step() { local now; now=$(date +%s); say "$1 done in $(( now - step_start )) s"; echo "| $1 | $(( now - step_start )) |" >> /tmp/clorg-timing.md; step_start=$now; }
printf '| step | seconds |\n|---|---:|\n' > /tmp/clorg-timing.md

# 1. checks: everything the run needs is named before any device time goes into training
shopt -s nullglob nocaseglob
wheels=(.whl/*.whl)
(( ${#wheels[@]} )) || fail ".whl/ holds no wheels: run ci/fetch_device_wheels.sh before the lease and carry .whl"
for w in openTSNE; do
    found=(.whl/"$w"-*.whl)
    (( ${#found[@]} )) || fail ".whl/ lacks $w: run ci/fetch_device_wheels.sh"
done
shopt -u nullglob nocaseglob
[[ -f .device-data/cifar10-jpeg.tar.gz ]] || fail ".device-data/cifar10-jpeg.tar.gz is missing: run ci/stage_device_data.sh and carry .device-data"
[[ $(sha256sum .device-data/cifar10-jpeg.tar.gz | cut -d' ' -f1) == "$DATA_SHA256" ]] \
    || fail ".device-data/cifar10-jpeg.tar.gz has the wrong sha256: run ci/stage_device_data.sh again"
command -v "$PY" >/dev/null || fail "no $PY on this machine"
"$PY" -c 'import torch' || fail "$PY cannot import torch"
{ "$PY" --version; "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'; nvidia-smi -L 2>/dev/null || true
  # what torch.compile's measurement needs (device_job.inductor_missing skips it without them)
  "$PY" -c 'import triton; print("triton", triton.__version__)' 2>/dev/null || echo "no triton"
  echo "C compiler: $(command -v cc gcc clang | head -1)"
  "$PY" -c 'import pathlib, sysconfig; h = pathlib.Path(sysconfig.get_paths()["include"], "Python.h"); print(h, h.is_file())' 
  uname -a; nproc; free -g | head -2; } > /tmp/clorg-machine.txt 2>&1
cat /tmp/clorg-machine.txt
step "checks"

# 2. the wheels
# (a python that imports openTSNE already, the rehearsal's, installs nothing: the wheels are for the device's 3.12)
"$PY" -c 'import openTSNE' 2>/dev/null \
    || "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || fail "installing .whl/ failed"
export PYTHONPATH=$ROOT/lib:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
[[ -f .device-data/COMMIT ]] && export CLORG_COMMIT=$(cat .device-data/COMMIT)
export CLORG_DATA=$ROOT/.device-data CLORG_OFFLINE=1 CLORG_CACHE=${CLORG_CACHE:-/tmp/clorg-cache}
export CLORG_RUNS=${CLORG_RUNS:-/tmp/clorg-runs} CLORG_RESULTS=${CLORG_RESULTS:-/tmp/clorg-results}
"$PY" -c "import openTSNE, clorg.book.chapters, clorg.train.bundle" || fail "clorg or openTSNE does not import"
step "wheels"

# 3. the job, under a hard timeout below the command's limit
left=$(( BUDGET - ($(date +%s) - START) - 30 ))  # kept: the kill's 10 s, the pack after a timeout (15 s)
(( left > 120 )) || fail "only $left s of the budget left before the job"
say "job budget $left s, training $TRAIN_SECONDS s"
timeout -k 10 "$left" "$PY" -u ci/device_job.py --profile "$PROFILE" --out "$OUT" --budget "$(( left - 10 ))" \
    --train-budget "$TRAIN_SECONDS" "${EXTRA[@]}"
status=$?
if (( status == 124 || status == 137 )); then
    (( status == 124 )) && why="hit its hard timeout of $left s" \
        || why="was killed (exit 137: the timeout's kill 10 s after its stop, or the machine's memory)"
    say "the job $why: what it packed before is kept; packing the parts of the cut step"
    timeout 15 "$PY" ci/device_job.py --profile "$PROFILE" --out "$OUT" --pack-only "${EXTRA[@]}" \
        || say "packing after the timeout failed: the pack of the last finished step is kept"
fi
step "job (exit $status)"
ls -l "$OUT" "$OUT/weights"
cat /tmp/clorg-timing.md
exit "$status"
