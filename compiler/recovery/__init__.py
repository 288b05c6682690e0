"""Recovery training: distil the model before compression into the compressed graph (finetune, the recover
pass), on an exact ONNX -> torch translation that keeps the compression (masks), optionally data-parallel (DDP)."""
