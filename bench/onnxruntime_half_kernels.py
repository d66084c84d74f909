"""Which ops ONNX Runtime's CPU provider runs at fp16 and bf16 on this install: why the onnx target has no bf16.

For each op a video model needs (Conv, MatMul, Gemm, Add, Mul, Relu, Sigmoid, Softmax,
LayerNormalization), a one-node model at that type is handed to ``InferenceSession`` with only the
CPU provider; the row says "kernel" or the runtime's own first line (NOT_IMPLEMENTED: no kernel;
INVALID_GRAPH: the ONNX schema does not allow the type). Where every op has a kernel, ``--time``
also times a 3x3 convolution at fp32 and at the half type, in turns, to say whether the kernel is
faster than fp32 on this CPU.

    python bench/onnxruntime_half_kernels.py [--time]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

OPSET = 21
#: op → (inputs, attributes) of a one-node model on [4, 16] tensors (Conv: NCHW with a 3x3 weight)
OPS: dict[str, tuple[int, dict[str, Any]]] = {
    "Conv": (1, {"pads": [1, 1, 1, 1]}), "MatMul": (2, {}), "Gemm": (2, {}), "Add": (2, {}), "Mul": (2, {}),
    "Relu": (1, {}), "Sigmoid": (1, {}), "Softmax": (1, {}), "LayerNormalization": (1, {}),
}


def _tensor(name: str, array: np.ndarray, half: str) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    if half == "bf16":  # numpy has no bfloat16: the upper half of each float32
        bits = (array.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        return helper.make_tensor(name, TensorProto.BFLOAT16, array.shape, bits.tobytes(), raw=True)
    return numpy_helper.from_array(array.astype({"fp16": np.float16, "fp32": np.float32}[half]), name)


def one_node_model(op: str, half: str, channels: int = 16, size: int = 32) -> bytes:
    """A model of one ``op`` node at ``half`` (fp32, fp16 or bf16), serialised."""
    from onnx import TensorProto, helper

    elem = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}[half]
    count, attrs = OPS[op]
    rng = np.random.default_rng(0)
    inits, inputs = [], ["x"]
    if op == "Conv":
        shape = [1, channels, size, size]
        inits.append(_tensor("w", rng.standard_normal((channels, channels, 3, 3)), half))
        inputs.append("w")
    else:
        shape = [4, 16] if op not in ("MatMul", "Gemm") else [16, 16]
        inputs += ["x"] * (count - 1)
        if op == "LayerNormalization":
            inits.append(_tensor("g", np.ones(shape[-1:]), half))
            inputs.append("g")
    node = helper.make_node(op, inputs, ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", elem, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()


def kernel_row(half: str) -> dict[str, str]:
    """Per op: "kernel", or the first line ONNX Runtime's CPU provider gives when it cannot run it."""
    import onnxruntime as ort

    row = {}
    for op in OPS:
        try:
            ort.InferenceSession(one_node_model(op, half), providers=["CPUExecutionProvider"])
            row[op] = "kernel"
        except Exception as exc:  # noqa: BLE001 - the runtime's refusal is the answer
            text = str(exc).splitlines()[0]
            row[op] = text.split(" : ")[2] if text.count(" : ") >= 2 else text[:80]
    return row


def time_conv(halves: list[str], rounds: int = 5, runs: int = 20) -> dict[str, float]:
    """p50 ms of the one-Conv model (64 channels, 56x56) per type, the types timed in turns, 1 thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = {h: ort.InferenceSession(one_node_model("Conv", h, 64, 56), opts, providers=["CPUExecutionProvider"])
                for h in halves}
    x = np.random.default_rng(0).standard_normal((1, 64, 56, 56)).astype(np.float32)
    feeds = {h: {"x": x.astype(np.float16) if h == "fp16" else x} for h in halves}
    times: dict[str, list[float]] = {h: [] for h in halves}
    for _ in range(rounds):
        for h, sess in sessions.items():
            sess.run(None, feeds[h])
            for _ in range(runs):
                t0 = time.perf_counter()
                sess.run(None, feeds[h])
                times[h].append((time.perf_counter() - t0) * 1e3)
    return {h: float(np.median(t)) for h, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", action="store_true", help="time a convolution at fp32 and at each half type with kernels")
    args = ap.parse_args()
    import onnxruntime as ort

    from edgest.host import isa_summary

    print(f"onnxruntime {ort.__version__}, CPU provider, opset {OPSET}; host ISA: {isa_summary()}")
    print("| type | " + " | ".join(OPS) + " |")
    print("|---" * (len(OPS) + 1) + "|")
    rows = {h: kernel_row(h) for h in ("fp16", "bf16")}
    for half, row in rows.items():
        print(f"| {half} | " + " | ".join(row.values()) + " |")
    if args.time:
        timed = ["fp32", *(h for h, row in rows.items() if all(v == "kernel" for v in row.values()))]
        p50 = time_conv(timed)
        print("3x3 Conv, 64 channels, 56x56, 1 thread, p50 ms in turns: "
              + ", ".join(f"{h} {v:.3f} ({v / p50['fp32']:.2f}x fp32)" for h, v in p50.items()))


if __name__ == "__main__":
    main()
