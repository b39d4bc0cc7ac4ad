"""The hardware cost model: per-layer FLOPs and bytes of a model, a roofline with per-kernel costs fitted on
measured profiles, a device table with datasheet figures, and profiles derived from them.

Predicting needs only NumPy and SciPy (layer tables are committed JSON); tracing a new model needs PyTorch.
"""
