"""edgest's TensorRT target: ONNX (edgest_onnx's exporter) → TensorRT engine → TensorRT runtime.

Building and running an engine needs the ``tensorrt`` package and an NVIDIA GPU. The ONNX
pre-flight check does not: :func:`prepare_onnx` exports a captured program and
:func:`check_onnx_for_tensorrt` lists what TensorRT 10's ONNX parser would refuse.
"""

from edgest_tensorrt.check import check_onnx_for_tensorrt, prepare_onnx

__all__ = ["check_onnx_for_tensorrt", "prepare_onnx"]
