"""Batch-independent int8 for the ONNX encoder: per-row (per-token) activation scales (issue #16).

    python scripts/try_rowwise_int8.py [--texts 500] [--rounds 3] [--work /tmp/rowint8]

ONNX Runtime's dynamic quantisation (`quantize_dynamic`, today's `onnx-int8`) scales a MatMul's
activations per tensor, i.e. per batch: a text's vector depends on what else shares its ONNX call, so
int8 runs one text per call. Here every weight MatMul of the fp32 export is rebuilt with one scale per
activation row (per token), which no other row can change:

    s = max(|A|, over the last axis) / 127            (one scale per token; tiny s clamped)
    q = uint8(round(A / s) + 128)                      (shared by the MatMuls reading A: Q/K/V)
    Y = float(MatMulInteger(q, W8, a_zero_point=128)) * w_scale[column] * s

with W8 the fp32 weight quantised symmetrically per output column. Printed: cosine to the fp32 vectors
(each text alone), the largest change of a vector component between a text alone and inside its
length-sorted group of 16, and ms per text (one session each, one intra-op thread, interleaved rounds,
medians), for today's per-tensor int8 and the per-row graph (plus, for comparison, ONNX Runtime's
MatMulNBits with 8-bit weights and int8 compute, which quantises activations per row block too).

Printed on the 2-core dev machine (AMD EPYC, AVX512-VNNI, CPU shared with other jobs), onnxruntime
1.32, 500 BANKING77 train texts of 15.9 tokens on average, `--rounds 5` (2026-11-29):

                          cos mean  cos min  alone vs group16     MB
    fp32                   1.00000  1.00000          0.00e+00   90.4
    int8 per-tensor        0.99398  0.98219          4.27e-02   23.0   (onnx-int8 before)
    int8 rows plain        0.99759  0.99362          0.00e+00   58.7
    int8 rows fused        0.99759  0.99362          0.00e+00   58.7
    int8 rows ql21         0.99759  0.99362          0.00e+00   58.7
    int8 rows shipped      0.99761  0.99408          0.00e+00   23.6   (ql21 + int8 word embeddings)
    MatMulNBits 8-bit      0.99916  0.99745          6.26e-03   58.9

    ms per text (median of 5)   plain        fused        ql21         shipped      (x today)
    alone                       3.51 1.23    3.62 1.28    3.11 1.10    2.91 1.02
    groups of 4                 2.30 0.81    2.53 0.89    2.16 0.76    2.13 0.75
    groups of 8                 2.13 0.75    2.29 0.80    2.03 0.71    1.91 0.67
    groups of 16                2.15 0.76    2.20 0.77    1.99 0.70    1.97 0.69
    today: int8 per-tensor alone 2.84 ms; fp32 groups of 16 4.38 (1.54x); MatMulNBits alone 4.62
    (1.63x), groups of 16 3.62 (1.27x). Earlier runs: shipped groups of 16 0.63x, ql21 0.57-0.68x.

The graph optimiser fuses nothing into the per-row quantisation (QuantizeLinear, MatMulIntegerToFloat
stay as built; it fuses the export's bias+Gelu); optimised and unoptimised graphs differ by up to 9e-3
in a component for every int8 variant (per-tensor: 1.4e-2), with the same cosine to fp32: a float
rounding that moves a value across a quantisation step moves the vector by about that much, so
"independent of the batch" holds here because the fp32 kernels round alike for every batch shape
(fp32 alone vs in a group: 0.0). MatMulNBits (8-bit weights, accuracy_level 4) is the most accurate but
slower here and not batch-independent (6e-3). Zero-shot top-1 on BANKING77 test (`bot eval`, intents/):
torch 0.8247, per-tensor int8 0.8211, per-row int8 (shipped) 0.8260.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from bot.routing.encoder import bundled_model_path
from bot.routing.encoder_onnx import (
    constant_weight,
    export_onnx,
    length_groups,
    replace_nodes,
    symmetric_int8,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


def rowwise_int8(fp32: onnx.ModelProto, style: str = "ql21") -> onnx.ModelProto:
    """The fp32 graph with each 2-D constant-weight MatMul in int8, activations scaled per row.

    style "plain": Abs, ReduceMax, Div, Round, Add 128, Cast to uint8, MatMulInteger, Cast, Mul, Mul;
    "fused": the same quantisation, then one com.microsoft MatMulIntegerToFloat (per-column weight
    scales applied in the GEMM's output step, the per-row scales by one broadcast multiply);
    "ql21": opset 21, the row quantised by one QuantizeLinear with block_size = the row's length.
    The shipped graph (bot.routing.encoder_onnx.rowwise_int8) is "ql21" with the word-embedding table
    (30522 x 384, half the fp32 file) in int8 too, one scale per token id, dequantised after the Gather.
    """
    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    graph = model.graph
    if style == "ql21":  # the export's opset-17 ops keep their meaning at 21 (no Reduce*, no Split)
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = 21
    if style != "plain" and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    inits = {i.name: i for i in graph.initializer}
    consts = [
        numpy_helper.from_array(np.array(1.0 / 127.0, dtype=np.float32), "rowq_inv127"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "rowq_tiny"),
        numpy_helper.from_array(np.array(128.0, dtype=np.float32), "rowq_128f"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "rowq_zp"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "rowq_last_axis"),
    ]
    quantised: dict[str, tuple[str, str]] = {}  # activation -> (its uint8 rows, its per-row scale)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        weight = constant_weight(node, inits)
        if weight is None:
            nodes.append(node)
            continue
        a, name = node.input[0], node.name or node.output[0]
        if a not in quantised:
            p = f"{name}/rowq"
            if style == "ql21":
                reduce_max = helper.make_node(
                    "ReduceMax", [f"{p}/abs", "rowq_last_axis"], [f"{p}/max"], keepdims=1
                )
            else:
                reduce_max = helper.make_node("ReduceMax", [f"{p}/abs"], [f"{p}/max"], axes=[-1], keepdims=1)
            nodes += [
                helper.make_node("Abs", [a], [f"{p}/abs"]),
                reduce_max,
                helper.make_node("Mul", [f"{p}/max", "rowq_inv127"], [f"{p}/s0"]),
                helper.make_node("Max", [f"{p}/s0", "rowq_tiny"], [f"{p}/scale"]),
            ]
            if style == "ql21":
                k = int(weight.dims[0])
                nodes += [
                    helper.make_node("Shape", [f"{p}/scale"], [f"{p}/shape"]),
                    helper.make_node("Expand", ["rowq_zp", f"{p}/shape"], [f"{p}/zp"]),
                    helper.make_node(
                        "QuantizeLinear", [a, f"{p}/scale", f"{p}/zp"], [f"{p}/q"], axis=-1, block_size=k
                    ),
                ]
            else:
                nodes += [
                    helper.make_node("Div", [a, f"{p}/scale"], [f"{p}/div"]),
                    helper.make_node("Round", [f"{p}/div"], [f"{p}/round"]),
                    helper.make_node("Add", [f"{p}/round", "rowq_128f"], [f"{p}/shift"]),
                    helper.make_node("Cast", [f"{p}/shift"], [f"{p}/q"], to=TensorProto.UINT8),
                ]
            quantised[a] = (f"{p}/q", f"{p}/scale")
        q, scale = quantised[a]
        w8, w_scale = symmetric_int8(numpy_helper.to_array(weight).astype(np.float32), 0)
        w8_name, ws_name = f"{weight.name}_rowq_w8", f"{weight.name}_rowq_wscale"
        consts += [numpy_helper.from_array(w8, w8_name), numpy_helper.from_array(w_scale, ws_name)]
        if style == "plain":
            nodes += [
                helper.make_node(
                    "MatMulInteger", [q, w8_name, "rowq_zp"], [f"{name}/i32"], name=f"{name}/int"
                ),
                helper.make_node("Cast", [f"{name}/i32"], [f"{name}/f32"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{name}/f32", ws_name], [f"{name}/colscaled"]),
                helper.make_node("Mul", [f"{name}/colscaled", scale], [node.output[0]]),
            ]
        else:  # no bias input: the kernel would add it before the per-row scale (the export adds it after)
            nodes.append(
                helper.make_node(
                    "MatMulIntegerToFloat",
                    [q, w8_name, scale, ws_name, "rowq_zp"],
                    [node.output[0]],
                    name=f"{name}/int",
                    domain="com.microsoft",
                )
            )
    replace_nodes(model, nodes, consts)
    return model


def nbits8(fp32: onnx.ModelProto, block: int = 128) -> onnx.ModelProto:
    """ONNX Runtime's MatMulNBits: 8-bit symmetric weights in blocks of `block`, int8 compute
    (accuracy_level 4, activations quantised per row block), built as its own quantiser builds it."""
    from onnxruntime.capi._pybind_state import quantize_matmul_8bits

    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    for node in graph.node:
        weight = constant_weight(node, inits)
        if weight is None:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight).astype(np.float32)
        rows, cols = w.shape
        blocks = (rows + block - 1) // block
        w = np.pad(w, ((0, blocks * block - rows), (0, 0)))
        packed = np.zeros((cols, blocks, block), dtype=np.uint8)
        scales = np.zeros((cols, blocks), dtype=np.float32)
        zero_points = np.zeros((cols, blocks), dtype=np.uint8)
        quantize_matmul_8bits(packed, np.ascontiguousarray(w), scales, zero_points, block, cols, rows, True)
        added += [
            numpy_helper.from_array(packed, f"{weight.name}_q8"),
            numpy_helper.from_array(scales, f"{weight.name}_q8_scales"),
        ]
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], f"{weight.name}_q8", f"{weight.name}_q8_scales"],
                [node.output[0]],
                name=f"{node.name}_Q8",
                domain="com.microsoft",
                K=rows,
                N=cols,
                bits=8,
                block_size=block,
                accuracy_level=4,
            )
        )
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    replace_nodes(model, nodes, added)
    return model


def session(file: Path, level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def embed(sess: ort.InferenceSession, ids: Sequence[Sequence[int]], most: int) -> np.ndarray:
    """What OnnxEncoder._run computes, with `most` texts per length-sorted group."""
    names = {i.name for i in sess.get_inputs()}
    out = np.empty((len(ids), 384), dtype=np.float32)
    for group in length_groups([len(t) for t in ids], most=most):
        width = max(len(ids[i]) for i in group)
        tokens = np.zeros((len(group), width), dtype=np.int64)
        mask = np.zeros((len(group), width), dtype=np.int64)
        for row, i in enumerate(group):
            tokens[row, : len(ids[i])] = ids[i]
            mask[row, : len(ids[i])] = 1
        feed = {"input_ids": tokens, "attention_mask": mask, "token_type_ids": np.zeros_like(tokens)}
        hidden = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        out[group] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rowint8"))
    args = parser.parse_args()

    model_path = bundled_model_path()
    folder = args.work / "export"
    fp32_file = export_onnx(model_path, folder, quantized=False)
    tensor_file = folder / "model_int8.onnx"
    if not tensor_file.is_file():  # today's onnx-int8 before this change: per-tensor dynamic quantisation
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32_file), str(tensor_file), weight_type=QuantType.QInt8, per_channel=True)
    files = {"fp32": fp32_file, "int8 per-tensor": tensor_file}
    for style in ("plain", "fused", "ql21"):
        files[f"int8 rows {style}"] = args.work / f"model_int8_rows_{style}.onnx"
        onnx.save(rowwise_int8(onnx.load(str(fp32_file)), style), str(files[f"int8 rows {style}"]))
    files["int8 rows shipped"] = export_onnx(model_path, folder, quantized=True)  # ql21 + int8 embeddings
    for name, file in files.items():
        print(f"{name}: {file.stat().st_size / 1e6:.1f} MB")
    files["MatMulNBits 8-bit"] = args.work / "model_nbits8.onnx"
    onnx.save(nbits8(onnx.load(str(fp32_file))), str(files["MatMulNBits 8-bit"]))

    with DATA.open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    texts = random.Random(0).sample(texts, args.texts)
    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.no_padding()
    ids = [e.ids for e in tokenizer.encode_batch(texts)]
    print(f"{len(ids)} texts, {statistics.mean(map(len, ids)):.1f} tokens on average")

    sessions = {name: session(file) for name, file in files.items()}
    reference = embed(sessions["fp32"], ids[:50], 1)
    for name in files:  # does the optimiser change the results?
        plain = embed(session(files[name], ort.GraphOptimizationLevel.ORT_DISABLE_ALL), ids[:50], 1)
        optimised = embed(sessions[name], ids[:50], 1)
        print(
            f"{name}, 50 texts: optimised vs unoptimised graph max |diff| {np.abs(plain - optimised).max():.2e};"
            f" cosine to fp32 {(optimised * reference).sum(1).mean():.5f} optimised,"
            f" {(plain * reference).sum(1).mean():.5f} unoptimised"
        )
        if name == "fp32":
            continue
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(args.work / f"optimised-{name.replace(' ', '_')}.onnx")
        ort.InferenceSession(str(files[name]), options, providers=["CPUExecutionProvider"])
        ops: dict[str, int] = {}
        for node in onnx.load(options.optimized_model_filepath).graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
        print(f"  optimised graph: {ops}")

    alone = {name: embed(sess, ids, 1) for name, sess in sessions.items()}
    print(f"\n{'':20s} {'cos mean':>9s} {'cos min':>8s} {'alone vs group16':>17s}")
    for name, sess in sessions.items():
        cos = (alone[name] * alone["fp32"]).sum(axis=1)
        grouped = np.abs(alone[name] - embed(sess, ids, 16)).max()
        print(f"{name:20s} {cos.mean():9.5f} {cos.min():8.5f} {grouped:17.2e}")

    runs: dict[str, Callable[[], object]] = {
        "int8 per-tensor alone": lambda: embed(sessions["int8 per-tensor"], ids, 1)
    }
    for name in files:
        if name.startswith("int8 rows") or name.startswith("MatMulNBits"):
            for most in (1, 4, 8, 16) if name.startswith("int8 rows") else (1, 16):
                label = f"{name} {'alone' if most == 1 else f'groups {most}'}"
                runs[label] = lambda name=name, most=most: embed(sessions[name], ids, most)  # type: ignore[misc]
    runs["fp32 groups 16"] = lambda: embed(sessions["fp32"], ids, 16)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):  # interleaved: every variant sees the same share of the noisy CPU
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000 / len(ids))
    base = statistics.median(times["int8 per-tensor alone"])
    print(f"\n{'ms per text (median)':34s} {'ms':>6s} {'x today':>8s}")
    for name, values in times.items():
        print(f"{name:34s} {statistics.median(values):6.2f} {statistics.median(values) / base:8.2f}")


if __name__ == "__main__":
    main()
