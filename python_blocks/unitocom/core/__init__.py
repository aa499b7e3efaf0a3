"""The project's shared vocabulary: modalities and their constants, the model
registry, stream-tag keys, the JSCC frame format and the metrics. Blocks,
training (``onnx_export``) and every subsystem import these from here."""
