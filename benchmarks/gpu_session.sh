#!/usr/bin/env bash
# Every GPU check and benchmark of the suite in one run, for a short lease on a CUDA machine.
#
#   OUT=gpu_out DATA=path/to/jpeg/folder bash benchmarks/gpu_session.sh
#
# DATA: a flat folder of ImageNet-style JPEGs ('<wnid>_<name>.JPEG'); WHEELS (optional): a folder of wheels to
# install first (a machine without a package index). Steps run in order of importance, each under its own time
# limit (all within BUDGET_S seconds, default 570), and write under OUT: all.log (everything, the environment
# first), pipeline_cuda.md, pipeline_cuda_reference.md, corruptions_cuda.md, speed_settings_cost.md, fidelity_cuda.md/.csv (7 files).
# SMOKE=1 shrinks every step (a dry run on a CPU machine).
# benchmarks/prepare_device_carry.sh makes .whl and .device_data/sample here (carry both to the machine).
set -u
OUT=${OUT:-gpu_out}
DATA=${DATA:-.device_data/sample}
SMOKE=${SMOKE:-0}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
LOG="$OUT/all.log"
export PYTHONUNBUFFERED=1 ROBUSTBENCH_SYMPIE_OFFLINE=1 ROBUSTBENCH_SYMPIE_SAMPLE="$DATA"

DEADLINE=$(( $(date +%s) + ${BUDGET_S:-570} ))  # every step ends before this
step() {  # step NAME SECONDS COMMAND...: run under a time limit, log everything, never stop the session
    local name=$1 limit=$2 left=$(( DEADLINE - $(date +%s) ))
    shift 2
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 10 ]; then echo "=== $name skipped: out of time" | tee -a "$LOG"; return; fi
    echo "=== $name (limit ${limit}s) $(date +%T)" | tee -a "$LOG"
    timeout --signal=INT --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
    echo "=== $name rc=$? $(date +%T)" | tee -a "$LOG"
}

if [ -n "${WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl >>"$LOG" 2>&1 && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$LOG" 2>&1 \
        || echo "editable install failed: running from the source tree" | tee -a "$LOG"
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    nproc
    python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, \
'cuda', torch.cuda.is_available())"
    python3 -c "import robustbench_sympie, imagecorruptions, efficientnet_lite_pytorch; print('imports ok')"
} 2>&1 | tee -a "$LOG"

# a larger image folder for the pipeline: the DATA images nine times under new ids (decoding is real)
GRID=/tmp/grid_images
python3 - "$DATA" "$GRID" <<'EOF'
import shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for copy in range(9):
    for path in sorted(src.glob("*.JPEG")):
        wnid, rest = path.name.split("_", 1)
        shutil.copy(path, dst / f"{wnid}_copy{copy}_{rest}")
EOF

if [ "$SMOKE" = 1 ]; then
    IMAGES=16 CELLS=2 BATCH=16 WORKERS=2 LIMIT=6 CORR="clean,contrast,fog" SEV=3 ROUNDS=1 BBATCH=8 K="contrast"
else
    IMAGES=2048 CELLS=4 BATCH=256 WORKERS=12 LIMIT="" CORR="clean,benchmark" SEV=1,2,3,4,5 ROUNDS=3 BBATCH=256 K=""
fi
LIMIT_ARG=${LIMIT:+--limit $LIMIT}

# 1. pipeline efficiency and the full-grid projection: torch backend with device decoding, fp32 and bf16 +
#    channels-last, the three cases; then the reference backend and worker decoding for resnet50
step pipeline 220 python3 benchmarks/bench_pipeline.py --device "$DEVICE" --images $IMAGES --cells $CELLS \
    --batch-size $BATCH --workers $WORKERS --backends torch --decodes device --fast --data-root "$GRID" \
    --out "$OUT/pipeline_cuda.md"
step pipeline_reference 70 python3 benchmarks/bench_pipeline.py --device "$DEVICE" --images $IMAGES --cells $CELLS \
    --batch-size $BATCH --workers $WORKERS --backends torch,reference --decodes workers \
    --cases identity+resnet50_random --data-root "$GRID" --out "$OUT/pipeline_cuda_reference.md"
# 2. the GPU tests
step gpu_tests 60 python3 -m pytest -q -m gpu -p no:cacheprovider -s tests/test_gpu_backend.py tests/test_device_decode.py
# 3. fidelity of the torch backend on CUDA to the reference (rendered by single-threaded processes on the CPU cores)
OMP_NUM_THREADS=1 step fidelity 150 python3 benchmarks/corruption_fidelity.py --data-root "$DATA" $LIMIT_ARG \
    --device "$DEVICE" --workers 15 --batch-size 128 --corruptions "${CORR#clean,}" --severities "$SEV" \
    --out "$OUT/fidelity_cuda.md" --csv "$OUT/fidelity_cuda.csv"
# 4. per-corruption throughput on the device
BENCH_CORRUPTION_BATCH=$BBATCH BENCH_CORRUPTION_ROUNDS=$ROUNDS BENCH_REPORT="$OUT/corruptions_cuda.md" \
    step corruptions 60 python3 -m pytest -q -p no:cacheprovider benchmarks/bench_corruptions.py --benchmark-only \
    -k "torch-cuda${K:+ and $K}"
# 5. accuracy cost of the speed settings (measured on 2026-12-04: leaderboards/speed_settings_cost.md; rerun if time)
step speed_settings 70 python3 benchmarks/speed_settings_cost.py --device "$DEVICE" --data-root "$DATA" $LIMIT_ARG \
    --corruptions "$CORR" --severities "$SEV" --batch-size 128 --workers $WORKERS --corruption-backend torch \
    --settings "fp32,bf16,fp16,channels-last,bf16 + channels-last,compile" --out "$OUT/speed_settings_cost.md"
echo "=== done $(date +%T)" | tee -a "$LOG"
