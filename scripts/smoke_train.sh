#!/usr/bin/env bash
# Smoke training of the three networks through the public entry points (issue 6):
# train for a few minutes (tiny configs), resume for one more minute, export, then evaluate the
# exported weights through the filters on clips from ../shared/data. Results: runs/smoke/*/results.md
# Usage: scripts/smoke_train.sh [minutes per network, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-3}"
data="${VSRESTORE_SHARED:-../shared}/data"
out=runs/smoke
vsr() { ./dev python -m vsrestore.cli "$@"; }

vsr train --task mstfn --config tiny --out $out/mstfn --data "$data/vimeo_septuplet" "$data/sintel16" \
    --val-data "$data/clips/sparks_480x270_5f_yuv420p10le.yuv" --in-bits 6 --batch 8 --patch 48 \
    --steps 100000 --minutes "$minutes" --val-every 25 --checkpoint-minutes 1
vsr train --task mstfn --config tiny --out $out/mstfn --data "$data/vimeo_septuplet" "$data/sintel16" \
    --in-bits 6 --steps 100000 --minutes "$((minutes + 1))" --export $out/mstfn.safetensors
vsr evaluate --task mstfn --model $out/mstfn.safetensors --in-bits 6 --max-frames 5 \
    --clips "$data/clips/sparks_480x270_5f_yuv420p10le.yuv" --out $out/mstfn-eval

vsr train --task stifn --config tiny --out $out/stifn --data "$data/vimeo_septuplet" \
    --val-data "$data/clips/cars_320x240_30f.i420" --qp 37 --batch 8 --patch 48 \
    --steps 100000 --minutes "$minutes" --val-every 25 --checkpoint-minutes 1
vsr train --task stifn --config tiny --out $out/stifn --data "$data/vimeo_septuplet" --qp 37 \
    --steps 100000 --minutes "$((minutes + 1))" --export $out/stifn.safetensors
vsr evaluate --task stifn --model $out/stifn.safetensors --qp 37 --max-frames 9 \
    --clips "$data/clips/CiscoVT2people_320x192_9f.i420" "$data/clips/cars_320x240_30f.i420" --out $out/stifn-eval

vsr train --task msitf --config tiny --out $out/msitf --data "$data/vimeo_septuplet" \
    --val-data "$data/clips/carphone_pristine.mp4" --degradation bd --batch 4 --patch 16 \
    --steps 100000 --minutes "$minutes" --val-every 25 --checkpoint-minutes 1
vsr train --task msitf --config tiny --out $out/msitf --data "$data/vimeo_septuplet" --degradation bd \
    --steps 100000 --minutes "$((minutes + 1))" --export $out/msitf.safetensors
vsr evaluate --task msitf --model $out/msitf.safetensors --degradation bd --max-frames 9 \
    --clips "$data/clips/carphone_pristine.mp4" --out $out/msitf-eval
