"""Turn a trained Keras checkpoint into a realtime-split ONNX model (docs/model-format.md).

Run ``python -m export --checkpoint runs/NAME/best.keras --output model.onnx``.
The export is only written once ONNX Runtime reproduces the Keras model within
tolerance, so a file produced here can be trusted by the runtime. This package
imports TensorFlow; ``realtime_split`` never imports it.
"""
