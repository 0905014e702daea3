"""Writes the small ONNX graphs bench/wasm-costs.bench.mjs times (Debian's python3-onnx).

    python3 bench/wasm_cost_graphs.py OUT_DIR

- feed.onnx: the 12 cache inputs of the seed-size model (6 layers, K and V, (B, 8, P, 32)
  float32) and nothing but their Shape: a run costs what handing the cache to the runtime
  costs.
- products_fp32.onnx / products_int8.onnx: the 24 weight products of a seed-size decode step
  (per layer x·W_qkv (256 × 768), ·W_proj (256 × 256), ·W_fc (256 × 1024), ·W_down
  (1024 × 256)) on x (B, 1, 256), chained; float32 MatMul, or int8 weights (7-bit symmetric
  per column, as `minigpt export --quantize int8` writes them) through DynamicQuantizeLinear
  → MatMulInteger → Cast → Mul, the four nodes onnxruntime fuses into DynamicQuantizeMatMul.
- products_nbits8.onnx: the same products through onnxruntime's `com.microsoft` MatMulNBits
  with 8-bit weights (uint8, zero point 128, a scale per block of 32 along K, as onnxruntime's
  own block quantizer writes them; accuracy_level 4, int8 compute where a kernel has it): the
  other int8 form onnxruntime offers, whose weights are packed once at load where it has a
  kernel for them.
Random weights (seeded): speed only.
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LAYERS, HEADS, HEAD_SIZE, WIDTH = 6, 8, 32, 256


def save(graph, path):
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def feed_graph():
    nodes, inputs, outputs = [], [], []
    for layer in range(LAYERS):
        for part in ("key", "value"):
            name = f"past.{layer}.{part}"
            inputs.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", HEADS, "past", HEAD_SIZE])
            )
            nodes.append(helper.make_node("Shape", [name], [f"{name}.shape"]))
            outputs.append(helper.make_tensor_value_info(f"{name}.shape", TensorProto.INT64, [4]))
    return helper.make_graph(nodes, "feed", inputs, outputs)


NBITS_BLOCK = 32


def products_graph(form, rng):
    """form: "fp32", "int8" (MatMulInteger) or "nbits8" (MatMulNBits)."""
    nodes, initializers = [], []

    def product(x, name, rows, columns):
        weight = (rng.standard_normal((rows, columns)) * 0.05).astype(np.float32)
        if form == "nbits8":
            blocks = rows // NBITS_BLOCK
            by_block = weight.T.reshape(columns, blocks, NBITS_BLOCK)  # (N, K / block, block)
            scale = np.abs(by_block).max(axis=2) / 127  # (N, K / block)
            codes = np.round(by_block / scale[:, :, None]).astype(np.int32) + 128
            initializers.append(numpy_helper.from_array(codes.astype(np.uint8), f"{name}.uint8"))
            initializers.append(numpy_helper.from_array(scale.astype(np.float32).reshape(-1), f"{name}.scale"))
            nodes.append(
                helper.make_node(
                    "MatMulNBits",
                    [x, f"{name}.uint8", f"{name}.scale"],
                    [f"{name}.out"],
                    domain="com.microsoft",
                    K=rows,
                    N=columns,
                    bits=8,
                    block_size=NBITS_BLOCK,
                    accuracy_level=4,
                )
            )
            return f"{name}.out"
        if form == "fp32":
            initializers.append(numpy_helper.from_array(weight, name))
            nodes.append(helper.make_node("MatMul", [x, name], [f"{name}.out"]))
            return f"{name}.out"
        scale = np.abs(weight).max(axis=0) / 63
        initializers.append(numpy_helper.from_array(np.round(weight / scale).astype(np.int8), f"{name}.int8"))
        initializers.append(numpy_helper.from_array(scale.astype(np.float32), f"{name}.scale"))
        nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [f"{name}.xq", f"{name}.xs", f"{name}.xz"]))
        nodes.append(helper.make_node("MatMulInteger", [f"{name}.xq", f"{name}.int8", f"{name}.xz"], [f"{name}.i32"]))
        nodes.append(helper.make_node("Cast", [f"{name}.i32"], [f"{name}.f32"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Mul", [f"{name}.xs", f"{name}.scale"], [f"{name}.scales"]))
        nodes.append(helper.make_node("Mul", [f"{name}.f32", f"{name}.scales"], [f"{name}.out"]))
        return f"{name}.out"

    x = "x"
    for layer in range(LAYERS):
        qkv = product(x, f"h.{layer}.qkv", WIDTH, 3 * WIDTH)
        nodes.append(helper.make_node("Slice", [qkv, "zero", "width", "last"], [f"h.{layer}.q"]))
        projected = product(f"h.{layer}.q", f"h.{layer}.proj", WIDTH, WIDTH)
        up = product(projected, f"h.{layer}.fc", WIDTH, 4 * WIDTH)
        x = product(up, f"h.{layer}.down", 4 * WIDTH, WIDTH)
    for name, value in (("zero", 0), ("width", WIDTH), ("last", -1)):
        initializers.append(numpy_helper.from_array(np.array([value], np.int64), name))
    return helper.make_graph(
        nodes,
        "products",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, WIDTH])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 1, WIDTH])],
        initializer=initializers,
    )


if __name__ == "__main__":
    out = sys.argv[1]
    save(feed_graph(), f"{out}/feed.onnx")
    save(products_graph("fp32", np.random.default_rng(1)), f"{out}/products_fp32.onnx")
    save(products_graph("int8", np.random.default_rng(1)), f"{out}/products_int8.onnx")
    save(products_graph("nbits8", np.random.default_rng(1)), f"{out}/products_nbits8.onnx")
