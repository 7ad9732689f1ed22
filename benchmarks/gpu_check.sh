#!/usr/bin/env bash
# Issue 19's GPU checks in one call of the device tool, after benchmarks/gpu_wheels.sh here:
#
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=600)
#
# 1. the GPU-only tests; 2. benchmarks/svi_step.py at MC_Maze 20 ms (its `graphs` column);
# 3. `pyrolf fit --data mc_maze --device cuda` on a generated MC_Maze-sized folder, once for each
# setting in FITS ("graphs": cuda_graphs on, "eager": off) at EPOCHS epochs (the preset's 2000 by
# default; TRIALS training trials, 2295 as MC_Maze; DEVICE=cpu for a dry run in an active
# venv here), each printing its median seconds per epoch without validation and its scores.
# FIT_TIMEOUT=S stops each fit after S seconds and summarises the epochs it checkpointed;
# PARTS (default "tests bench fits") picks which of the three parts run; "infer", never by
# default, adds benchmarks/infer.py on INFER_TRIALS trials (default 2869, MC_Maze's all) and
# benchmarks/diagnose.py on DIAGNOSE_TRIALS trials (default 574, MC_Maze's valid split).
# Everything printed also goes to $OUT/gpu_check.log; each fit's metrics.json and history.csv
# come back as $OUT/<setting>-metrics.json and $OUT/<setting>-history.csv.
set -uo pipefail
repo=$PWD
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
FITS=${FITS:-graphs} EPOCHS=${EPOCHS:-2000} TRIALS=${TRIALS:-2295} DEVICE=${DEVICE:-cuda}
FIT_TIMEOUT=${FIT_TIMEOUT:-0} PARTS=${PARTS:-tests bench fits} INFER_TRIALS=${INFER_TRIALS:-2869}
DIAGNOSE_TRIALS=${DIAGNOSE_TRIALS:-574}
export PYTHONUNBUFFERED=1
if [ "$DEVICE" = cuda ]; then  # a dry run (DEVICE=cpu) uses the active venv's python3 instead
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi

summary() {  # median seconds of the epochs without validation, then the scores
    python3 - "$1" <<'EOF'
import csv, json, statistics, sys
run = sys.argv[1]
rows = list(csv.DictReader(open(f"{run}/history.csv")))
plain = [float(r["seconds"]) for r in rows[1:] if not r["valid_co_bps"]]
try:
    metrics = json.load(open(f"{run}/metrics.json"))
except FileNotFoundError:
    metrics = {"best_epoch": "n/a (stopped before the end)"}
print(f"{run}: median_epoch_s={statistics.median(plain):.4f} epochs={len(rows)}",
      *(f"{k}={metrics[k]:.4f}" for k in ("co_bps", "fp_bps", "persistence_fp_bps", "vel_r2",
                                         "psth_r2", "valid_co_bps")
        if isinstance(metrics.get(k), float)), f"best_epoch={metrics.get('best_epoch')}")
EOF
}

{
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    python3 -c "import torch, pyro, pyrolf; print('torch', torch.__version__, 'pyro', pyro.__version__, pyrolf.__file__)"
    # pyrolf comes from the wheel: run pytest outside the checkout, whose ./pyrolf lacks models/
    [[ $PARTS == *tests* ]] && (cd /tmp && python3 -m pytest -q -p no:cacheprovider -k gpu \
        "$repo/tests/test_capture.py" "$repo/tests/test_dynamics.py" "$repo/tests/test_training.py" \
        "$repo/tests/test_infer.py" "$repo/tests/test_sessions.py")
    [[ $PARTS == *bench* ]] && python3 benchmarks/svi_step.py --device "$DEVICE" --repeats 20 \
        --sizes mc_maze_20ms
    [[ $PARTS == *infer* ]] && python3 benchmarks/infer.py --device "$DEVICE" \
        --trials "$INFER_TRIALS" && python3 benchmarks/diagnose.py --device "$DEVICE" \
        --trials "$DIAGNOSE_TRIALS"
    [[ $PARTS == *fits* ]] || FITS=""
    for setting in $FITS; do
        case $setting in graphs) graphs=true ;; eager) graphs=false ;; *) echo "FITS: graphs or eager" ; exit 1 ;; esac
        echo "{\"cuda_graphs\": $graphs}" > "/tmp/$setting.json"
        rm -rf "/tmp/gen/run-$setting"  # from an earlier call on the same machine
        started=$SECONDS
        timeout "$FIT_TIMEOUT" python3 benchmarks/nlb_synthetic_fit.py --folder /tmp/gen \
            --trials "$TRIALS" -- --device "$DEVICE" --quiet --epochs "$EPOCHS" \
            --config "/tmp/$setting.json" --out "/tmp/gen/run-$setting" \
            || echo "the $setting fit stopped with status $?"
        echo "$setting: $((SECONDS - started)) s in all"
        [ -f "/tmp/gen/run-$setting/history.csv" ] || continue
        summary "/tmp/gen/run-$setting"
        cp /tmp/gen/run-$setting/{metrics.json,history.csv} "$out/" 2>/dev/null
        for f in metrics.json history.csv; do
            [ -f "$out/$f" ] && mv "$out/$f" "$out/$setting-$f"
        done
    done
} 2>&1 | tee "$out/gpu_check.log"
