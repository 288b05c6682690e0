"""The `recover` pass: distil the model before compression into the compressed graph (accelc.finetune).

    passes=["prune:mode=channel,ratio=0.5", "recover:dataset=digits,epochs=20"]

The teacher is the model before the passes: the compile's canonical graph (PassContext.reference), or the
`teacher=` option (a model file `accelc.compile` loads, or an artifact directory) when the pass runs elsewhere.
Training data: `dataset=digits`, `data=X.npy` (with optional `labels=Y.npy`), or else the compile's calibration
inputs (unlabelled: distillation only). The pass returns a new graph with the trained weights; shapes, zeros and
bit widths are those it was given.
"""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from accelc.errors import PassError
from accelc.passes import NewModelPass, PassContext, PassResult, register

TRAIN_KEYS = ("epochs", "batch_size", "accumulate", "lr", "alpha", "temperature", "val_split", "patience", "seed")


@register
class Recover(NewModelPass):
    """recover[:teacher=PATH][,dataset=digits|data=X.npy[,labels=Y.npy]][,epochs=20][,batch_size=32]
    [,accumulate=1][,lr=0.001][,alpha=0.5][,temperature=4][,val_split=0.1][,patience=3][,seed=0]"""

    name = "recover"

    def __init__(self, context: PassContext | None = None, teacher: str | None = None, dataset: str | None = None,
                 data: str | None = None, labels: str | None = None, **train: Any) -> None:
        unknown = {k: v for k, v in train.items() if k not in TRAIN_KEYS}
        super().__init__(context, **unknown)
        if not teacher and self.context.reference is None:
            raise PassError("recover: give the model before compression, e.g. recover:teacher=model.pt")
        if dataset and data:
            raise PassError("recover: give one of dataset= and data=")
        self.teacher = str(teacher) if teacher else None
        self.dataset, self.data, self.labels = dataset, data, labels
        self.train = train

    @property
    def options(self) -> dict:
        opts = {"teacher": self.teacher or "the graph before the passes", **self.train}
        opts.update({k: v for k, v in (("dataset", self.dataset), ("data", self.data), ("labels", self.labels)) if v})
        return opts

    def call(self, model: ir.Model) -> PassResult:
        from accelc.recovery.api import finetune

        data = self.data
        if self.dataset is None and data is None:
            if self.context.calibration is None:
                raise PassError("recover: no training data: give dataset=digits or data=X.npy, or compile with "
                                "calibration data (--calibration / --dataset)")
            data = self.context.calibration
        teacher = self.teacher or self.context.reference
        result = finetune(ir.to_proto(model), teacher, dataset=self.dataset, data=data, labels=self.labels,
                          **self.train)
        stats = result.stats()
        return PassResult(ir.from_proto(result.model), True, stats=stats, warnings=[])
