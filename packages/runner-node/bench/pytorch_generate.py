#!/usr/bin/env python3
"""PyTorch's greedy generation with a KV cache, the reference for generate.bench.mjs.

Reads an export directory written with the `safetensors` option (config.json and
model.safetensors in GPT-2's layout: the same weights runner-node runs) and generates greedily
from the given prompt ids, batch 1, the way a tuned PyTorch decoder does it:

  * float32, torch.inference_mode(), weights pre-transposed for torch.nn.functional.linear;
  * one preallocated (nh, blockSize, hs) key and value buffer per layer, written in place (no
    torch.cat per step);
  * prefill in one pass, then one token per step attending over the filled slots;
  * at each thread setting asked for ("N": N ATen and N OpenBLAS threads; "N/M": N and M — see
    tooling/bench-support/src/pytorch_threads.py), timed from the prefill to the last token,
    after warm-up rounds.

The model is GPT-2's forward as packages/model/scripts/gpt2_reference.py defines it (that
script's reader and GELU are used, so both references share one definition).

Usage: pytorch_generate.py EXPORT_DIR PROMPT_IDS_JSON NEW_TOKENS ROUNDS WARMUP THREADS_CSV
(THREADS_CSV: settings, e.g. 1,2,1/2). Prints one JSON object: {"ids": [...new ids...],
"tokensPerSec": {"1 thread": [...], "2 threads": [...], ...}, "torch": version}, keyed by
each setting's label.
"""

import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "model" / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tooling" / "bench-support" / "src"))
from gpt2_reference import gelu, read_directory  # noqa: E402
import pytorch_threads  # noqa: E402


class CachedGpt2:
    def __init__(self, config, weights):
        self.n_layer = config["n_layer"]
        self.n_head = config["n_head"]
        self.n_embd = config["n_embd"]
        self.block = config["n_positions"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.activation = config.get("activation_function", "gelu_new")
        w = {name: tensor.float().contiguous() for name, tensor in weights.items()}
        # F.linear computes x @ Wᵀ: Conv1D's (in, out) weights are stored transposed once.
        self.linear = {
            name[: -len(".weight")]: (w[name].t().contiguous(), w[name[: -len("weight")] + "bias"])
            for name in w
            if name.endswith(".weight") and (".attn.c_" in name or ".mlp.c_" in name)
        }
        self.w = w
        head_size = self.n_embd // self.n_head
        self.keys = [torch.zeros(self.n_head, self.block, head_size) for _ in range(self.n_layer)]
        self.values = [torch.zeros(self.n_head, self.block, head_size) for _ in range(self.n_layer)]

    def layer_norm(self, x, prefix):
        return torch.nn.functional.layer_norm(
            x, (self.n_embd,), self.w[prefix + ".weight"], self.w[prefix + ".bias"], self.eps
        )

    def dense(self, x, prefix):
        weight, bias = self.linear[prefix]
        return torch.nn.functional.linear(x, weight, bias)

    def step(self, ids, start):
        """Logits of the last position (V) for `ids` at positions start…; fills the cache."""
        steps = len(ids)
        n_head, n_embd = self.n_head, self.n_embd
        head_size = n_embd // n_head
        end = start + steps
        x = self.w["wte.weight"][ids] + self.w["wpe.weight"][start:end]  # (T, C)
        causal = None
        if steps > 1:
            causal = torch.ones(steps, end, dtype=torch.bool).tril(diagonal=start)
        for layer in range(self.n_layer):
            p = f"h.{layer}"
            qkv = self.dense(self.layer_norm(x, p + ".ln_1"), p + ".attn.c_attn")  # (T, 3C)
            q, k, v = (t.view(steps, n_head, head_size).transpose(0, 1) for t in qkv.split(n_embd, 1))
            self.keys[layer][:, start:end] = k
            self.values[layer][:, start:end] = v
            keys = self.keys[layer][:, :end]  # (nh, P+T, hs)
            scores = (q @ keys.transpose(1, 2)) * (1 / math.sqrt(head_size))  # (nh, T, P+T)
            if causal is not None:
                scores = scores.masked_fill(~causal, float("-inf"))
            attended = torch.softmax(scores, dim=-1) @ self.values[layer][:, :end]  # (nh, T, hs)
            x = x + self.dense(attended.transpose(0, 1).reshape(steps, n_embd), p + ".attn.c_proj")
            hidden = gelu(self.dense(self.layer_norm(x, p + ".ln_2"), p + ".mlp.c_fc"), self.activation)
            x = x + self.dense(hidden, p + ".mlp.c_proj")
        last = self.layer_norm(x[-1:], "ln_f")  # (1, C)
        return (last @ self.w["wte.weight"].T)[0]  # (V): the head is tied to wte

    def generate(self, prompt, new_tokens):
        ids = list(prompt)
        logits = self.step(torch.tensor(ids), 0)
        out = []
        for _ in range(new_tokens):
            token = int(torch.argmax(logits))
            out.append(token)
            logits = self.step(torch.tensor([token]), len(ids))
            ids.append(token)
        return out


def main(argv):
    directory, prompt_json, new_tokens, rounds, warmup, threads_csv = argv
    config, weights = read_directory(directory)
    prompt = json.loads(prompt_json)
    new_tokens, rounds, warmup = int(new_tokens), int(rounds), int(warmup)
    if len(prompt) + new_tokens > config["n_positions"]:
        raise SystemExit("prompt + new tokens exceed the block size")
    model = CachedGpt2(config, weights)
    speeds = {}
    ids = None
    with torch.inference_mode():
        for setting in threads_csv.split(","):
            label = pytorch_threads.apply(torch, setting)
            speeds[label] = []
            for round_index in range(warmup + rounds):
                started = time.perf_counter()
                ids = model.generate(prompt, new_tokens)
                seconds = time.perf_counter() - started
                if round_index >= warmup:
                    speeds[label].append(new_tokens / seconds)
    print(json.dumps({"ids": ids, "tokensPerSec": speeds, "torch": torch.__version__}))


if __name__ == "__main__":
    main(sys.argv[1:])
