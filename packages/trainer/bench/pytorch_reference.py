"""Reference figure for `pnpm bench:train`: the same GPT train step in PyTorch on this CPU.

Same model as @minigpt/model (pre-LN blocks, exact GELU, LayerNorm eps 1e-5, tied LM head,
dropout on embeddings, attention weights and residual branches), same optimizer (AdamW,
betas 0.9/0.95, weight decay 0.1 on matrices only, clipping at 1.0), fp32, vocab 65, random
tokens. Prints ms/iter and tokens/s per preset as the bench's --reference-tok-s argument.

    python3 bench/pytorch_reference.py [--threads 2] [--iters 12]

Any shape, instead of the presets (bench/scaling.bench.mjs): --n-layer, --n-head, --n-embd,
--block-size, --batch-size (all five), optionally --vocab-size (65) and --dropout (0); it
runs as preset "custom", --iters steps after 2 warm-up steps. --threads takes a list of
settings (--threads 1,2,1/2): each preset runs at each in turn, in the same process. "N" is
N ATen and N OpenBLAS threads, "N/M" N and M (tooling/bench-support/src/pytorch_threads.py:
torch.set_num_threads alone leaves OpenBLAS on one thread per core).

Debian: apt-get install python3-torch libopenblas0-pthread (without the pthread OpenBLAS,
Debian's torch uses a BLAS ~30x slower).
"""
import argparse
import math
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tooling" / "bench-support" / "src"))
import pytorch_threads  # noqa: E402

PRESETS = {
    # name: (n_layer, n_head, n_embd, block_size, batch_size, dropout)
    "baby": (4, 4, 128, 64, 12, 0.0),
    "seed": (6, 8, 256, 128, 64, 0.1),
    # GPT-2 (124M) fine-tuned at block 256 (bench/finetune-gpt2.bench.mjs): biases, tanh GELU,
    # vocab 50257, the fine-tune's learning rate, AdamW betas 0.9/0.99 as the trainer's.
    "gpt2-b1": (12, 12, 768, 256, 1, 0.0),
    "gpt2-b4": (12, 12, 768, 256, 4, 0.0),
}
GPT2_PRESETS = {"gpt2-b1", "gpt2-b4"}


class Block(nn.Module):
    def __init__(self, n_head, n_embd, block_size, dropout, bias=False, gelu="none"):
        super().__init__()
        self.n_head = n_head
        self.gelu = gelu
        self.ln_1 = nn.LayerNorm(n_embd, eps=1e-5, elementwise_affine=True)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.ln_2 = nn.LayerNorm(n_embd, eps=1e-5)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = nn.Dropout(dropout)
        mask = torch.tril(torch.ones(block_size, block_size)).bool()
        self.register_buffer("mask", mask.view(1, 1, block_size, block_size))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))  # (B, nh, T, T)
        att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf")).softmax(dim=-1)
        y = (self.attn_dropout(att) @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.dropout(self.c_proj(y))
        return x + self.dropout(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate=self.gelu)))


class GPT(nn.Module):
    def __init__(self, vocab, n_layer, n_head, n_embd, block_size, dropout, bias=False, gelu="none"):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(n_head, n_embd, block_size, dropout, bias, gelu) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)

    def forward(self, idx, targets):
        t = idx.size(1)
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t)))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head, (B, T, V)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="2", help="a setting, or a list: 1,2,1/2")
    parser.add_argument("--iters", type=int, default=12)
    parser.add_argument("--presets", default="baby,seed")
    shape_flags = ("n_layer", "n_head", "n_embd", "block_size", "batch_size")
    for flag in shape_flags:
        parser.add_argument("--" + flag.replace("_", "-"), type=int)
    parser.add_argument("--vocab-size", type=int, default=65)
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args()
    shape = [getattr(args, flag) for flag in shape_flags]
    if any(value is not None for value in shape):
        if any(value is None for value in shape):
            parser.error("a custom shape needs all of " + ", ".join("--" + f.replace("_", "-") for f in shape_flags))
        PRESETS["custom"] = (*shape, args.dropout)
        args.presets = "custom"
    settings = args.threads.split(",")
    for setting in settings:
        pytorch_threads.parse(setting)  # a bad setting stops the run before any preset
    best_tok_s = {}  # per preset, the best over the thread settings
    for name, setting in ((name, setting) for name in args.presets.split(",") for setting in settings):
        threads = pytorch_threads.apply(torch, setting)
        torch.manual_seed(1)
        n_layer, n_head, n_embd, block_size, batch, dropout = PRESETS[name]
        gpt2 = name in GPT2_PRESETS
        vocab = 50257 if gpt2 else args.vocab_size if name == "custom" else 65
        model = GPT(vocab, n_layer, n_head, n_embd, block_size, dropout, bias=gpt2, gelu="tanh" if gpt2 else "none")
        decay = [p for p in model.parameters() if p.dim() >= 2 and p is not model.wpe.weight and p is not model.wte.weight]
        no_decay = [p for p in model.parameters() if not any(p is d for d in decay)]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
            # The trainer's AdamW: β2 0.99 for every preset (TrainConfig's default).
            lr=3e-5 if gpt2 else 1e-3, betas=(0.9, 0.99),
        )
        times = []
        iters = args.iters if name in ("baby", "custom") or gpt2 else max(4, args.iters // 3)
        warmup = 1 if gpt2 else 2
        for step in range(iters + warmup):
            x = torch.randint(0, vocab, (batch, block_size))
            y = torch.randint(0, vocab, (batch, block_size))
            start = time.perf_counter()
            loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss.item()
            if step >= warmup:
                times.append(time.perf_counter() - start)
        ms = statistics.median(times) * 1000
        tok_s = batch * block_size / (ms / 1000)
        # Linux reports ru_maxrss in KiB; the peak of this process so far (presets run in order).
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{name}: {ms:.1f} ms/iter, {tok_s:.0f} tokens/s (PyTorch {torch.__version__}, {threads}), peak RSS {rss_mb:.0f} MB"
        )
        best_tok_s[name] = max(best_tok_s.get(name, 0), tok_s)
    print("--reference-tok-s=" + ",".join(f"{name}:{tok_s:.0f}" for name, tok_s in best_tok_s.items()))


if __name__ == "__main__":
    main()
