#!/usr/bin/env bash
# The golden configuration: efficientnet_lite0 with identity and SyMPIE (the packaged EFFICIENTNET_LITE0_SAMPLE
# checkpoint, so both the NEM + warp code path and the trained weights are guarded) on 32 embedded demo images,
# clean and four corruptions at severities 2 and 4, seed 0, on the CPU. Usage: run_golden.sh OUT_DIR
set -euo pipefail
out="${1:?usage: run_golden.sh OUT_DIR}"
run_suite --enhancer identity,sympie --model efficientnet_lite0 \
  --corruptions clean,gaussian_noise,defocus_blur,contrast,jpeg_compression --severities 2,4 \
  --limit 32 --seed 0 --workers 2 --device cpu --no-progress --out "$out"
