"""edgest's ONNX target: export with torch.onnx (dynamo), simplify with onnxsim, run with ONNX Runtime."""
