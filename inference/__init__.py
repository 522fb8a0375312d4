"""Vision inference: OpenCV preprocessing, ONNX Runtime (default) and Ultralytics runtimes.

Model output becomes `cdat` types here, at the boundary. Nothing loads at import time.
"""
