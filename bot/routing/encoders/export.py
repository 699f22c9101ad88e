"""Build time: a sentence-transformers folder exported to ONNX, fp32 and per-row int8.

Run as the child process `onnx_files.export_onnx` starts, never imported by a server (it needs torch,
which a process never gives back): `python -m bot.routing.encoders.export MODEL DIR [--int8]`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bot.routing.encoders.onnx_files import FP32_FILE, INT8_FILE

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_here(model_path: Path, target: Path, *, quantized: bool) -> None:
    """The export itself: model.onnx from the model folder, then model_int8_rows.onnx from it if asked."""
    fp32 = target / FP32_FILE
    int8 = target / INT8_FILE
    # a private partial file per process: two replicas starting at once must not write into one file
    suffix = f".onnx.partial-{os.getpid()}"
    if not fp32.is_file():
        _export_fp32(model_path, fp32, suffix)
    if quantized and not int8.is_file():
        import onnx

        from bot.routing.encoders.int8_graph import rowwise_int8

        partial = int8.with_suffix(suffix)
        onnx.save(rowwise_int8(onnx.load(str(fp32))), str(partial))
        partial.replace(int8)


def _export_fp32(model_path: Path, fp32: Path, suffix: str) -> None:
    """The model's transformer (last hidden state; pooling is done at run time) through `torch.onnx`."""
    import torch
    from transformers import AutoModel

    fp32.parent.mkdir(parents=True, exist_ok=True)
    base = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            hidden: torch.Tensor = out.last_hidden_state
            return hidden

    dummy = torch.ones((2, 8), dtype=torch.long)
    partial = fp32.with_suffix(suffix)
    torch.onnx.export(
        LastHiddenState(base),
        (dummy, dummy, torch.zeros_like(dummy)),
        str(partial),
        input_names=list(INPUTS),
        output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")},
        opset_version=17,
        dynamo=False,
    )
    partial.replace(fp32)  # never leave a half-written model where the next start would load it


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")  # tracer and quantizer chatter: the parent reports failures itself
    export_here(Path(sys.argv[1]), Path(sys.argv[2]), quantized="--int8" in sys.argv[3:])
