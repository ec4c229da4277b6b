"""torch -> ONNX export of every narvox model into deployment bundles."""
