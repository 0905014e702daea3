#!/usr/bin/env bash
# The README's main job: build, prepare the default corpus (offline), train the CPU preset
# for a few minutes, print a sample, export it to ONNX and generate with onnxruntime-node.
# Safe to re-run: it starts the demo run afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
minigpt() { node packages/cli/dist/bin.js "$@"; }

npx turbo run build --output-logs=errors-only
minigpt prepare --force
rm -rf out/quickstart
minigpt train --config examples/shakespeare-char/config/train_shakespeare_cpu.ts --data data/moby-dick --out out/quickstart
echo
minigpt sample --checkpoint out/quickstart --prompt "Call me" --max-new-tokens 300 --temperature 0.8
echo
minigpt export --checkpoint out/quickstart --out out/quickstart-onnx --force
minigpt generate --model out/quickstart-onnx --prompt "Call me" --max-new-tokens 300 --temperature 0.8 --stats
