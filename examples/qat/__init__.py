"""Issue 16's survey of quantization-aware models (survey.py)."""
