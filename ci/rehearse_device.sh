#!/usr/bin/env bash
# Rehearse a GPU job on this machine's CPU, at a tiny size, as the device tool would run it: a copy of the
# tree as it travels (tracked and untracked-not-ignored files, plus the carried .whl/ and .device-data/),
# ci/device_run.sh in it, then what a maintainer does with what comes back. Four jobs:
#
#   1. a sized job with an exception injected into one chapter (05_tsne): the other steps go on, job.json
#      reports that one failed, and everything else comes back, the speed measurements included (torch.compile
#      through dynamo's no-op backend, --compile-backend eager, in every job here: inductor takes minutes on a CPU);
#   2. a job with a chapter that never ends after its first head (--hang-after-part): its hard timeout stops
#      it, and the weights, the chapters finished before and that head come back, job.json marking the cut
#      step "started, not finished"; an analysis job (--only 06_classifiers) then resumes after that head;
#   3. the import (ci/import_device_run.py) of job 1, the profile set to the job's sizing, and the book
#      rendered from the committed weights with no runs on this machine and no GPU (make book ALLOW_CPU=1:
#      the chapters the job did not compute are computed here from the weights);
#   4. a warm start from those weights (train.warm_start) of MoCo alone (train.warm_start_methods), one more
#      full schedule cycle, as the next real job: the supervised run is kept, neither probed nor trained; the
#      import replaces the MoCo weights it started from, and the profile, set to the job's settings (the warm
#      start pinned), still finds both runs: the book installs them, MoCo's from the new weights.
#
# Nothing of the real runs/, results/, weights/, build/ or _build/ is touched: every job, and the book, run in
# copies of the tree (the tiny profile is named gpu10 too, so a book built here would replace the real one's
# pages).  ci/rehearse_device.sh [PYTHON]
# PYTHON defaults to .venv/bin/python (the device's own python3 is 3.12 with torch 2.11; what differs there
# is checked within seconds by device_run.sh's first step).

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
PY=${1:-$ROOT/.venv/bin/python}
ci/fetch_device_wheels.sh >/dev/null
ci/stage_device_data.sh >/dev/null
scratch=$(mktemp -d /tmp/clorg-rehearsal.XXXXXX)
echo "rehearsal in $scratch"

# the tiny profile: gpu10 with a few images per class and a 1/8-width encoder; its name stays gpu10
"$PY" - "$scratch/gpu10.yaml" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open("configs/gpu10.yaml"))
cfg["data"].update(train_per_class=30, test_per_class=10)
cfg["train"].update(width_scale=0.125, supervised_epochs=2, contrastive_batch_size=60, supervised_batch_size=60,
                    moco_queue_size=240, supervised_warmup_epochs=1)
cfg["tsne"].update(sample_size=200, iterations=250)
cfg["heads"].update(seeds=2)
cfg["near_duplicates"].update(augment_draws=2000)
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
EOF

tree() {  # a fresh copy of the tree as the device tool sends it
    rm -rf "$1" && mkdir -p "$1"
    git ls-files -co --exclude-standard | tar cf - -T - | (cd "$1" && tar xf -)
    cp -r .whl .device-data "$1/"
    rm -rf "$1/results/gpu10"  # the real job's, of all CIFAR-10: the tiny profile, named gpu10 too, makes its own
}
job() {  # job NAME BUDGET TRAIN_SECONDS [extra args]: device_run.sh in its own tree, its $OUT kept
    local name=$1 budget=$2 train=$3
    shift 3
    tree "$scratch/$name/tree"
    (cd "$scratch/$name/tree" && PYTHON=$PY OUT=$scratch/$name/out CLORG_RUNS=$scratch/$name/runs \
        CLORG_RESULTS=$scratch/$name/results CLORG_CACHE=$scratch/cache TRAIN_SECONDS=$train OMP_NUM_THREADS=1 \
        ci/device_run.sh "$scratch/gpu10.yaml" "$budget" -- --allow-cpu --probe-steps 3 --probe-warmup 1 \
        --compile-backend eager "$@") \
        && status=0 || status=$?
    echo "== job $name: exit $status; back:"; (cd "$scratch/$name/out" && find . -type f | sort)
}
set_profile_train() {  # the tiny profile set to a job's train section, as a maintainer copies what the import prints
    "$PY" - "$scratch/gpu10.yaml" "$1" <<'EOF'
import json, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["train"].update(json.load(open(sys.argv[2]))["train"])
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
EOF
}
step_status() { "$PY" -c "import json,sys; print({s['step']: s['status'][:40] for s in json.load(open(sys.argv[1]))['steps']})" "$1"; }

job faulty 300 30 --fail-step 05_tsne
step_status "$scratch/faulty/out/job.json"
"$PY" - "$scratch/faulty/out/job.json" <<'EOF2' || { echo "REHEARSAL FAILED: the injected failure is not isolated"; exit 1; }
import json, sys
status = {s["step"]: s["status"] for s in json.load(open(sys.argv[1]))["steps"]}
assert status["05_tsne"].startswith("failed: RuntimeError: injected"), status
assert status["01_toy_clusters"] == "ok" and status["summary"] == "ok", status  # the steps after it ran
# the speed of the trained MoCo step, by phase and kind, and compiled against eager (dynamo's no-op backend
# here: inductor would take minutes on this CPU)
assert status["speed: breakdown"] == status["speed: batches"] == status["speed: torch.compile"] == "ok", status
speed = json.load(open(sys.argv[1]))["speed"]
assert speed["method"] == "moco_queue" and speed["breakdown"]["busy_ms"] > 0, speed
assert speed["compile"]["compiled_seconds_per_step"] > 0 and speed["compile"]["graphs"] == 3, speed  # in a process of its own
EOF2

# the hard timeout: a chapter that never ends after its first head (06_classifiers) is cut by it; what came
# before is kept, and the head it finished travels (the profile's own epochs, so that a later job finds the runs)
job overrun 200 30 --no-probe --hang-after-part 06_classifiers
step_status "$scratch/overrun/out/job.json"
ls "$scratch/overrun/out/weights/"*.pt >/dev/null || { echo "REHEARSAL FAILED: no weights back from the cut job"; exit 1; }
grep -q "hit its hard timeout" "$scratch/overrun/out/run.log" || { echo "REHEARSAL FAILED: the hard timeout did not stop the job"; exit 1; }
# after the timeout the results are packed once more (the heads a cut classifiers chapter finished travel)
grep -q "packing the parts of the cut step" "$scratch/overrun/out/run.log" \
    && ! grep -q "packing after the timeout failed" "$scratch/overrun/out/run.log" \
    || { echo "REHEARSAL FAILED: no packing after the timeout"; exit 1; }
"$PY" - "$scratch/overrun/out/job.json" <<'EOF2' || { echo "REHEARSAL FAILED: the cut job's record"; exit 1; }
import json, sys
status = {s["step"]: s["status"] for s in json.load(open(sys.argv[1]))["steps"]}
assert status["06_classifiers"].startswith("started, not finished"), status
assert status["07_dynamics"] == "ok" and status["08_near_duplicates"] == "ok", status  # packed before the cut
EOF2
packed=$(tar tzf "$scratch/overrun/out/results.tar.gz")  # (not piped into grep -q: pipefail and SIGPIPE)
grep -q "classifiers.parts.json" <<<"$packed" \
    || { echo "REHEARSAL FAILED: the cut chapter's finished head did not travel"; exit 1; }
# the next job, an analysis job on the same runs and results, resumes after that head
(cd "$scratch/overrun/tree" && PYTHON=$PY OUT=$scratch/resume/out CLORG_RUNS=$scratch/overrun/runs \
    CLORG_RESULTS=$scratch/overrun/results CLORG_CACHE=$scratch/cache OMP_NUM_THREADS=1 \
    ci/device_run.sh "$scratch/gpu10.yaml" 200 -- --allow-cpu --only 06_classifiers) \
    || { echo "REHEARSAL FAILED: the analysis job after the cut one"; exit 1; }
grep -q "resuming after 1 finished part" "$scratch/resume/out/run.log" \
    || { echo "REHEARSAL FAILED: the analysis job did not resume after the finished head"; exit 1; }

# the import, the profile set to the job's sizing, the book from the weights alone
export CLORG_WEIGHTS=$scratch/weights CLORG_RESULTS=$scratch/rendered CLORG_RUNS=$scratch/cpu-runs
# (exit 1: the profile lacks the job's sizing, set next; anything else is a failure)
"$PY" ci/import_device_run.py "$scratch/faulty/out" --profile "$scratch/gpu10.yaml" || (( $? == 1 )) \
    || { echo "REHEARSAL FAILED: the import of job 1"; exit 1; }
set_profile_train "$scratch/faulty/out/job.json"
"$PY" ci/import_device_run.py "$scratch/faulty/out" --profile "$scratch/gpu10.yaml"
records=("$scratch/weights/gpu10/"job*.json)  # imported twice, one job: one record
(( ${#records[@]} == 1 )) || { echo "REHEARSAL FAILED: one job, ${#records[@]} job records"; exit 1; }
t1=$(date +%s)
# `make book PROFILE=... ALLOW_CPU=1`, its two steps, in a copy of the tree: its build/ and _build/ are the copy's.
# The notebooks' kernels read the copy's package (PYTHONPATH), not the one the venv installed from this tree.
render=$scratch/render/tree
tree "$render"
(cd "$render" && export CLORG_DATA=$ROOT/.device-data PYTHONPATH=$render/lib \
    && "$PY" ci/execute_notebooks.py --profile "$scratch/gpu10.yaml" --allow-cpu \
    && "$PY" ci/build_book.py --profile "$scratch/gpu10.yaml") \
    || { echo "REHEARSAL FAILED: the book from the committed weights"; exit 1; }
echo "rendered the book from the committed weights in $(( $(date +%s) - t1 )) s: $render/_build/html/index.html"
"$PY" - "$render/build/gpu10/execution.json" <<'EOF'
import json, sys
nbs = json.load(open(sys.argv[1]))["notebooks"]
bad = [n for n in nbs if n["outcome"] != "ok"]
print({n["notebook"]: n["outcome"][:30] for n in nbs})
sys.exit(f"REHEARSAL FAILED: chapters not executed from the weights: {bad}" if bad else 0)
EOF
unset CLORG_WEIGHTS CLORG_RESULTS CLORG_RUNS

# a warm start: the next job starts from the committed weights (in its tree, as committed weights travel)
"$PY" - "$scratch/gpu10.yaml" <<'EOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["train"]["warm_start"] = "weights/gpu10"
cfg["train"]["warm_start_methods"] = ["moco_queue"]
yaml.safe_dump(cfg, open(sys.argv[1], "w"), sort_keys=False)
EOF
# (the tree's own committed weights/gpu10 are the real job's: replaced by the rehearsal's)
tree "$scratch/warm/tree"
rm -rf "$scratch/warm/tree/weights/gpu10"
mkdir -p "$scratch/warm/tree/weights"
cp -r "$scratch/weights/gpu10" "$scratch/warm/tree/weights/"
origin=$(cd "$scratch/warm/tree" && "$PY" -c "import sys; sys.path.insert(0, 'lib'); from pathlib import Path
from clorg.train import runs; print(runs.weights_sha256(Path('weights/gpu10')))")
(cd "$scratch/warm/tree" && PYTHON=$PY OUT=$scratch/warm/out CLORG_RUNS=$scratch/warm/runs \
    CLORG_RESULTS=$scratch/warm/results CLORG_CACHE=$scratch/cache TRAIN_SECONDS=30 OMP_NUM_THREADS=1 \
    ci/device_run.sh "$scratch/gpu10.yaml" 200 -- --allow-cpu --probe-steps 3 --probe-warmup 1 \
    --compile-backend eager) || true
grep -q "warm start from weights/gpu10" "$scratch/warm/out/run.log" || { echo "REHEARSAL FAILED: no warm start"; exit 1; }
"$PY" - "$scratch/warm/out/job.json" <<'EOF' || { echo "REHEARSAL FAILED: the warm job trained the supervised run again"; exit 1; }
import json, sys
job = json.load(open(sys.argv[1]))
print({m: (v or {}).get("run") for m, v in job["runs"].items()}, "kept:", job.get("kept"))
assert job.get("kept") == ["resnet18-supervised-cosine"] and list(job["probe"]) == ["moco_queue"], job.get("kept")
EOF
# its import replaces the weights it started from; the profile, set to the job's settings (the warm start
# pinned to the weights it read), still names its runs, and the book installs them from the new weights
(cd "$scratch/warm/tree" && "$PY" ci/import_device_run.py "$scratch/warm/out" --profile "$scratch/gpu10.yaml") \
    || (( $? == 1 )) || { echo "REHEARSAL FAILED: the import of the warm job"; exit 1; }
set_profile_train "$scratch/warm/out/job.json"
(cd "$scratch/warm/tree" && CLORG_DATA=$ROOT/.device-data CLORG_OFFLINE=1 CLORG_CACHE=$scratch/cache \
    CLORG_RUNS=$scratch/warm/cpu-runs "$PY" - "$scratch/gpu10.yaml" "$origin" <<'EOF'
import sys
sys.path.insert(0, "lib")
from clorg.book import chapters
from clorg.core.config import load_profile
from clorg.data import choose_profile_dataset
from clorg.train import runs
cfg = load_profile(sys.argv[1])
data = choose_profile_dataset(cfg)
installed = chapters.install_committed(cfg, data)
jobs = {f.name: runs.RunFolder(f).read_record().get("jobs") for f in installed}
print(f"train.warm_start: {cfg['train']['warm_start']}; installed from the warm job's weights: {jobs}")
assert cfg["train"]["warm_start"] == f"weights/gpu10@{sys.argv[2]}", "not pinned to the weights it started from"
# MoCo continued job 1 (2 jobs); the supervised run is job 1's, kept
assert sorted((f.name.split("-")[1], n) for f, n in zip(installed, jobs.values())) == [("moco_queue", 2), ("supervised", 1)], jobs
EOF
) || { echo "REHEARSAL FAILED: the warm job's runs are not installed from its weights"; exit 1; }
echo "REHEARSAL PASSED ($scratch)"
