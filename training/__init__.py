"""Training pipeline for realtime-split models (TensorFlow/Keras; install with ``pip install .[train]``).

Data readers (``training.datasets``) and the configuration (``training.config``)
import without TensorFlow so evaluation and tooling can use them cheaply.
"""
