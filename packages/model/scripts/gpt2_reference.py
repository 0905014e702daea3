#!/usr/bin/env python3
"""An independent GPT-2 forward pass in PyTorch, for checking @minigpt/model's GPT-2 directories.

It follows the Hugging Face GPT-2 definition (GPT2LMHeadModel) with torch alone -- neither the
`transformers` nor the `safetensors` package is needed, so Debian's python3-torch is enough:

  * Conv1D layers compute x @ W + b with W stored (in, out);
  * LayerNorm with config.json's layer_norm_epsilon;
  * causal softmax attention scaled by 1/sqrt(head size);
  * the MLP's activation_function: "gelu_new" / "gelu_pytorch_tanh" (tanh approximation) or
    "gelu" (exact erf);
  * the LM head tied to the token embedding wte.

Everything is computed in float64 from the stored weights, so the reference is more precise
than the float32 model it checks.

Usage:
  gpt2_reference.py make-fixture OUT_DIR
      Writes a small seeded random GPT-2 in the Hugging Face layout (config.json and
      model.safetensors, with the "transformer." prefix, a tied lm_head.weight and the
      attention-mask buffers old checkpoints carry) and expected.json: fixed input ids and
      the logits of this forward pass.
  gpt2_reference.py logits DIR IDS_JSON
      Reads a GPT-2 directory and prints {"logits": [...]} as JSON, one (T, V) list per
      sequence of IDS_JSON (a JSON list of lists of token ids).
"""

import json
import math
import struct
import sys
from pathlib import Path

import torch

# Fixture sizes: small enough to commit (about 120 KB), large enough that every head, layer,
# position and vocabulary row takes part.
FIXTURE = {"n_layer": 2, "n_head": 4, "n_embd": 32, "n_positions": 24, "vocab_size": 50}
FIXTURE_SEED = 14
FIXTURE_IDS = [
    [int(i) for i in torch.randint(0, 50, (24,), generator=torch.Generator().manual_seed(7))],
    [49, 0, 7, 7, 23, 31, 2],
]

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}


def read_safetensors(path):
    """The tensors of a safetensors file: an 8-byte little-endian header length, a JSON header
    of {name: {dtype, shape, data_offsets}}, then the raw little-endian data."""
    data = Path(path).read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = bytearray(data[start + begin : start + end])
        dtype = DTYPES[entry["dtype"]]
        values = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = values.reshape(entry["shape"]).clone()
    return tensors


def write_safetensors(path, tensors, metadata):
    """Writes `tensors` (name -> tensor, in order) as a safetensors file with `metadata`."""
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, tensor in tensors.items():
        # numpy has no bfloat16: its bytes go through int16.
        as_numpy = tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor
        raw = as_numpy.contiguous().numpy().tobytes()
        header[name] = {
            "dtype": DTYPE_NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # data 8-byte aligned, as the reference writer does
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for chunk in chunks:
            out.write(chunk)


def gelu(x, name):
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    raise SystemExit(f"activation_function {name!r} is not GPT-2's")


def forward(config, weights, ids):
    """Logits (T, V) for one sequence of token ids, in float64."""
    w = {name: tensor.double() for name, tensor in weights.items()}
    n_head, n_embd = config["n_head"], config["n_embd"]
    head_size = n_embd // n_head
    eps = config.get("layer_norm_epsilon", 1e-5)
    activation = config.get("activation_function", "gelu_new")
    steps = len(ids)

    def layer_norm(x, prefix):
        return torch.nn.functional.layer_norm(
            x, (n_embd,), w[prefix + ".weight"], w[prefix + ".bias"], eps
        )

    def conv1d(x, prefix):  # Hugging Face's Conv1D: weight (in, out)
        return x @ w[prefix + ".weight"] + w[prefix + ".bias"]

    positions = torch.arange(steps)
    x = w["wte.weight"][torch.tensor(ids)] + w["wpe.weight"][positions]  # (T, C)
    causal = torch.tril(torch.ones(steps, steps, dtype=torch.bool))
    for layer in range(config["n_layer"]):
        p = f"h.{layer}"
        qkv = conv1d(layer_norm(x, p + ".ln_1"), p + ".attn.c_attn")  # (T, 3C)
        q, k, v = qkv.split(n_embd, dim=1)
        q, k, v = (t.reshape(steps, n_head, head_size).transpose(0, 1) for t in (q, k, v))
        scores = q @ k.transpose(1, 2) / math.sqrt(head_size)  # (nh, T, T)
        scores = scores.masked_fill(~causal, float("-inf"))
        attended = torch.softmax(scores, dim=-1) @ v  # (nh, T, hs)
        attended = attended.transpose(0, 1).reshape(steps, n_embd)
        x = x + conv1d(attended, p + ".attn.c_proj")
        hidden = gelu(conv1d(layer_norm(x, p + ".ln_2"), p + ".mlp.c_fc"), activation)  # (T, 4C)
        x = x + conv1d(hidden, p + ".mlp.c_proj")
    x = layer_norm(x, "ln_f")
    return x @ w["wte.weight"].T  # (T, V): the head is tied to wte


def read_directory(directory):
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    if config.get("model_type") != "gpt2":
        raise SystemExit(f"{directory}/config.json: model_type is not gpt2")
    tensors = read_safetensors(directory / "model.safetensors")
    weights = {}
    for name, tensor in tensors.items():
        short = name[len("transformer.") :] if name.startswith("transformer.") else name
        weights[short] = tensor
    head = weights.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, weights["wte.weight"]):
        raise SystemExit(f"{directory}/model.safetensors: lm_head.weight is not wte.weight")
    return config, weights


def make_fixture(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(FIXTURE_SEED)
    c, layers = FIXTURE["n_embd"], FIXTURE["n_layer"]
    positions, vocab = FIXTURE["n_positions"], FIXTURE["vocab_size"]

    def normal(*shape, std):
        return torch.randn(*shape, generator=generator, dtype=torch.float32) * std

    # Larger than GPT-2's init (std 0.02) so that every part of the model moves the logits.
    weights = {"wte.weight": normal(vocab, c, std=0.5), "wpe.weight": normal(positions, c, std=0.3)}
    for layer in range(layers):
        p = f"h.{layer}"
        for norm in ("ln_1", "ln_2"):
            weights[f"{p}.{norm}.weight"] = 1.0 + normal(c, std=0.2)
            weights[f"{p}.{norm}.bias"] = normal(c, std=0.2)
        for name, fan_in, fan_out in (
            ("attn.c_attn", c, 3 * c),
            ("attn.c_proj", c, c),
            ("mlp.c_fc", c, 4 * c),
            ("mlp.c_proj", 4 * c, c),
        ):
            weights[f"{p}.{name}.weight"] = normal(fan_in, fan_out, std=1.0 / math.sqrt(fan_in))
            weights[f"{p}.{name}.bias"] = normal(fan_out, std=0.1)
    weights["ln_f.weight"] = 1.0 + normal(c, std=0.2)
    weights["ln_f.bias"] = normal(c, std=0.2)

    # As old checkpoints store them: the "transformer." prefix, the attention-mask buffers
    # (a float32 one, a bool one, and masked_bias) and an lm_head.weight equal to wte.
    stored = {f"transformer.{name}": tensor for name, tensor in weights.items()}
    mask = torch.tril(torch.ones(positions, positions)).reshape(1, 1, positions, positions)
    stored["transformer.h.0.attn.bias"] = mask
    stored["transformer.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    stored["transformer.h.1.attn.bias"] = mask.bool()
    stored["lm_head.weight"] = weights["wte.weight"].clone()
    write_safetensors(out / "model.safetensors", stored, {"format": "pt"})

    config = {
        "_comment": "made by packages/model/scripts/gpt2_reference.py make-fixture",
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 49,
        "embd_pdrop": 0.1,
        "eos_token_id": 49,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": positions,
        "n_embd": c,
        "n_head": FIXTURE["n_head"],
        "n_inner": None,
        "n_layer": layers,
        "n_positions": positions,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 20}},
        "vocab_size": vocab,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    config, weights = read_directory(out)  # what the files hold, read back as any reader would
    expected = {
        "comment": "logits of gpt2_reference.py's float64 forward pass, rounded to 1e-7",
        "inputs": [
            {"ids": ids, "logits": rounded(forward(config, weights, ids))} for ids in FIXTURE_IDS
        ],
    }
    (out / "expected.json").write_text(json.dumps(expected, separators=(",", ":")) + "\n")


def rounded(logits):
    return [[round(v, 7) for v in row] for row in logits.tolist()]


def main(argv):
    if len(argv) == 2 and argv[0] == "make-fixture":
        make_fixture(argv[1])
    elif len(argv) == 3 and argv[0] == "logits":
        config, weights = read_directory(argv[1])
        ids = json.loads(argv[2])
        print(json.dumps({"logits": [forward(config, weights, row).tolist() for row in ids]}))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
