"""Training tools for MindFlow's own FER2013 expression model (GitHub issue 7).

``python -m tools.train.train`` trains on CPU (or a GPU), ``python -m tools.train.export`` calibrates, exports to ONNX and
writes the model card. Nothing here is imported at run time by the engine or the OBS script.
"""
