#!/usr/bin/env bash
# The README's main job: build, prepare the default corpus (offline), train the CPU config,
# print a sample, export it to ONNX and generate with onnxruntime-node. Each step's output
# comes under a header saying what it shows, and ends with the time the step took, measured
# here: how long it takes depends on the machine, so the script says it rather than the README.
# Safe to re-run: it starts the demo run afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
minigpt() { node packages/cli/dist/bin.js "$@"; }

# 75 → 1m15s, 9 → 9s.
duration() {
  if (($1 >= 60)); then printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); else printf '%ds' "$1"; fi
}

# step VERB HEADER COMMAND…: the header above the command's output, "VERB in 1m15s on this
# machine" below it.
step() {
  local verb=$1 header=$2 start=$SECONDS
  shift 2
  printf '\n— %s —\n' "$header"
  "$@"
  printf '%s in %s on this machine\n' "$verb" "$(duration $((SECONDS - start)))"
}

# The CLI and its dependencies only: the web demo's build trains a model of its own. turbo's
# banner goes; its task counts stay, and everything it printed if it fails.
build_cli() {
  local log
  log=$(mktemp)
  if node_modules/.bin/turbo run build --filter='minigpt...' --output-logs=errors-only >"$log" 2>&1; then
    grep -E '^ *(Tasks|Cached): ' "$log" | sed 's/^ *//' || true
    rm -f "$log"
  else
    cat "$log"
    rm -f "$log"
    return 1
  fi
}

printf 'minigpt quick start on this machine: %s\n' "$(node -p '
  const os = require("node:os");
  `${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? "unknown CPU"}), ` +
    `${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.arch()}, Node ${process.version}`;
')"

step built 'build: the CLI and the packages it uses (turbo: cached after the first run)' build_cli
step prepared 'prepare: Moby-Dick, the offline default corpus, as one token per character' \
  minigpt prepare --force
rm -rf out/quickstart
step trained "train: nanoGPT's baby GPT (examples/shakespeare-char's CPU config) on it" \
  minigpt train --config examples/shakespeare-char/config/train_shakespeare_cpu.ts \
  --data data/moby-dick --out out/quickstart
step sampled 'a sample from the trained checkpoint (tfjs)' \
  minigpt sample --checkpoint out/quickstart --prompt "Call me" --max-new-tokens 300 --temperature 0.8
step exported 'export: the checkpoint to ONNX' \
  minigpt export --checkpoint out/quickstart --out out/quickstart-onnx --force
step generated 'the same model exported to ONNX, generated with onnxruntime-node (then --stats: its speed)' \
  minigpt generate --model out/quickstart-onnx --prompt "Call me" --max-new-tokens 300 --temperature 0.8 --stats
