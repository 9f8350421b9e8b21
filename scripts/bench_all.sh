#!/usr/bin/env bash
# Every benchmark the issues ask for, one after another (run on an otherwise idle machine).
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "== scripts/$*"; ./dev python "scripts/$@"; }
run bench_bridge.py
run bench_mstfn.py
run bench_stifn.py --frames 2
run bench_deform_conv.py
run bench_msitf.py
