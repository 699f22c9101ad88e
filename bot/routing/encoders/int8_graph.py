"""Build time: the fp32 ONNX export rewritten to int8 weights with activations scaled per token row.

Runs in the export's child process (`bot.routing.encoders.export`); only `onnx` and numpy are needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def constant_weight(node: Any, initializers: dict[str, Any]) -> Any | None:
    """The 2-D constant weight a MatMul node multiplies by (what int8 rewrites), or None for any other node."""
    weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
    return weight if weight is not None and len(weight.dims) == 2 else None


def symmetric_int8(values: np.ndarray, axis: int, *, keepdims: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`values` in int8, symmetric (no zero point), one scale per slice reduced over `axis`; an all-zero
    slice gets a tiny scale instead of a division by zero."""
    scale = np.maximum(np.abs(values).max(axis=axis, keepdims=keepdims), 1e-12) / 127.0
    return np.clip(np.round(values / scale), -127, 127).astype(np.int8), scale


def replace_nodes(model: Any, nodes: list[Any], added: list[Any]) -> None:
    """Give `model`'s graph these nodes, keep the initializers (its own, then `added`) that they read, and
    check the result."""
    import onnx

    graph = model.graph
    used = {i for n in nodes for i in n.input}
    kept = [i for i in [*graph.initializer, *added] if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)


def rowwise_int8(fp32: Any) -> Any:
    """The fp32 export (an onnx.ModelProto) with int8 weight MatMuls whose activations are scaled per row.

    ONNX Runtime's dynamic quantisation scales a MatMul's activations per tensor, i.e. per batch, so a
    text's vector would depend on what else shares its batch. Here each token row gets its own scale,
    which no other text can change, so texts run in length-sorted groups and each vector equals the one
    computed alone (measurements: docs/evaluation.md, "Per-row int8"):

        s = max(|A|) over the row / 127;  q = QuantizeLinear(A, s, 128) (uint8, blocked per row, opset 21)
        Y = MatMulIntegerToFloat(q, W8, s, w_scale, 128)  (per-column weight scales in the GEMM's output
                                                           step, the row scales by one broadcast multiply)

    W8 is the fp32 weight in int8, symmetric per output column; Q/K/V share their quantised input; the
    bias stays the export's own Add after the MatMul (the kernel would add it before the row scale). The
    word-embedding table is int8 too, one scale per token id, dequantised after the Gather (weights only).
    """
    model = _opset21_copy(fp32)
    rewrite = _RowwiseRewrite({i.name: i for i in model.graph.initializer})
    for node in model.graph.node:
        rewrite.add(node)
    replace_nodes(model, rewrite.nodes, rewrite.added)
    return model


def _opset21_copy(fp32: Any) -> Any:
    """A copy of `fp32` at opset 21 (blocked QuantizeLinear) that may use com.microsoft's operators."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    # the export's opset-17 ops keep their meaning at 21 (it has no Reduce* or Split, which changed)
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 21
    model.ir_version = max(model.ir_version, 10)  # opset 21 belongs to IR 10; other tools check the pair
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


class _RowwiseRewrite:
    """The new graph's nodes and initializers, built node by node from the fp32 graph's (`rowwise_int8`)."""

    def __init__(self, initializers: dict[str, Any]) -> None:
        from onnx import numpy_helper

        self.inits = initializers
        self.added = [
            numpy_helper.from_array(np.array(1.0 / 127.0, dtype=np.float32), "rowq_inv127"),
            numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "rowq_tiny"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "rowq_zp"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "rowq_last_axis"),
        ]
        self.nodes: list[Any] = []
        self.quantised: dict[str, tuple[str, str]] = {}  # activation -> (its uint8 rows, its row scales)
        self.converted: set[str] = set()  # int8 weights already added

    def add(self, node: Any) -> None:
        """`node` as it is, or rewritten to int8 if it is the word-embedding Gather or a weight MatMul."""
        table = self.inits.get(node.input[0]) if node.op_type == "Gather" else None
        along_rows = all(a.name != "axis" or a.i == 0 for a in node.attribute)  # rows by token id
        if table is not None and along_rows and len(table.dims) == 2 and table.dims[0] >= 1000:
            self._embedding_gather(node, table)
            return
        weight = constant_weight(node, self.inits)
        if weight is None:
            self.nodes.append(node)
            return
        self._weight_matmul(node, weight)

    def _embedding_gather(self, node: Any, table: Any) -> None:
        """The word embeddings in int8, one scale per token id, dequantised after the Gather."""
        from onnx import TensorProto, helper, numpy_helper

        e8, e_scale = symmetric_int8(numpy_helper.to_array(table).astype(np.float32), 1, keepdims=True)
        e8_name, es_name, p = f"{table.name}_rowq_e8", f"{table.name}_rowq_escale", node.output[0]
        self.added += [numpy_helper.from_array(e8, e8_name), numpy_helper.from_array(e_scale, es_name)]
        self.nodes += [
            helper.make_node("Gather", [e8_name, node.input[1]], [f"{p}/e8"]),
            helper.make_node("Cast", [f"{p}/e8"], [f"{p}/e32"], to=TensorProto.FLOAT),
            helper.make_node("Gather", [es_name, node.input[1]], [f"{p}/escale"]),
            helper.make_node("Mul", [f"{p}/e32", f"{p}/escale"], [node.output[0]]),
        ]

    def _weight_matmul(self, node: Any, weight: Any) -> None:
        """MatMulIntegerToFloat of the input's uint8 rows and the int8 weight (quantised once each)."""
        from onnx import helper, numpy_helper

        a = node.input[0]
        if a not in self.quantised:
            self.quantised[a] = self._quantise_rows(a, f"{node.output[0]}/rowq", int(weight.dims[0]))
        q, scale = self.quantised[a]
        w8_name, ws_name = f"{weight.name}_rowq_w8", f"{weight.name}_rowq_wscale"
        if w8_name not in self.converted:  # a weight two MatMuls share is quantised once
            self.converted.add(w8_name)
            w8, w_scale = symmetric_int8(numpy_helper.to_array(weight).astype(np.float32), 0)
            self.added += [numpy_helper.from_array(w8, w8_name), numpy_helper.from_array(w_scale, ws_name)]
        self.nodes.append(
            helper.make_node(
                "MatMulIntegerToFloat",
                [q, w8_name, scale, ws_name, "rowq_zp"],
                [node.output[0]],
                domain="com.microsoft",
            )
        )

    def _quantise_rows(self, a: str, p: str, block: int) -> tuple[str, str]:
        """Nodes quantising activation `a` to uint8 with one scale per row; the names of (rows, scales)."""
        from onnx import helper

        self.nodes += [
            helper.make_node("Abs", [a], [f"{p}/abs"]),
            helper.make_node("ReduceMax", [f"{p}/abs", "rowq_last_axis"], [f"{p}/max"], keepdims=1),
            helper.make_node("Mul", [f"{p}/max", "rowq_inv127"], [f"{p}/s0"]),
            helper.make_node("Max", [f"{p}/s0", "rowq_tiny"], [f"{p}/scale"]),  # an all-zero row
            helper.make_node("Shape", [f"{p}/scale"], [f"{p}/shape"]),
            helper.make_node("Expand", ["rowq_zp", f"{p}/shape"], [f"{p}/zp"]),
            helper.make_node(
                "QuantizeLinear", [a, f"{p}/scale", f"{p}/zp"], [f"{p}/q"], axis=-1, block_size=block
            ),
        ]
        return f"{p}/q", f"{p}/scale"
