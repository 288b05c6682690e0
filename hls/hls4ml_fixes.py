"""Exact fixes of hls4ml 1.3 optimizer passes that drop numbers, installed before accelc converts a model.

- ``remove_nop_batch_normalization`` removes every BatchNormalization/ApplyAlpha with scale 1 and bias 0, even one
  whose output type differs from its input's: there the layer is a cast, and removing it drops a quantization. It
  happens when a Quant's rescale (x * s), moved below a linear layer, meets the next Quant's scaling (x / s) with
  the same scale: the fused ApplyAlpha is 1 * x + 0 but carries the second Quant's integer type (a Brevitas
  TruncAvgPool2d: Quant -> AveragePool -> Trunc). The replacement removes only the ones that cast nothing.
"""

from __future__ import annotations

_INSTALLED = False


def install() -> None:
    """Idempotent: replace the passes above in hls4ml's optimizer registry."""
    global _INSTALLED
    if _INSTALLED:
        return
    from hls4ml.model.optimizer import optimizer as registry
    from hls4ml.model.optimizer.passes.batchnorm_opt import RemoveNopBatchNormalization
    from hls4ml.model.types import UnspecifiedPrecisionType

    class RemoveNopBatchNormalizationThatCastsNothing(RemoveNopBatchNormalization):
        def match(self, node) -> bool:
            if not super().match(node):
                return False
            out = node.get_output_variable().type.precision
            return isinstance(out, UnspecifiedPrecisionType) or str(out) == str(
                node.get_input_variable().type.precision)

    name = "remove_nop_batch_normalization"
    if name in registry.optimizer_map:
        fixed = RemoveNopBatchNormalizationThatCastsNothing()
        fixed.__dict__.update(registry.optimizer_map[name].__dict__)
        registry.optimizer_map[name] = fixed
    _INSTALLED = True
