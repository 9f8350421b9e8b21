"""Inference back-ends other than eager PyTorch (``backend=`` of the filters) and ONNX export."""
