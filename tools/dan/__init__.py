"""DAN (Distract Your Attention network, Wen et al. 2021/2023) for MindFlow: the network in PyTorch and its ONNX export.

Tool code only: it needs torch (``tools/requirements.txt``); nothing under ``obs_mindflow/`` imports it.
See ``docs/dan.md`` for the user's steps from a ``.pth`` checkpoint to a model folder the OBS script lists.
"""
