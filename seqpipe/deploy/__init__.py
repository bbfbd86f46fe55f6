"""Deployment: ONNX export of pipelines (``export``) and onnxruntime models behind the same
contracts as the torch ones (``runtime``), so the speech and music services run either."""
