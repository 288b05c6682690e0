"""The numpy engine: hls4ml's fpga artifacts executed bit for bit in numpy (see run.Engine)."""

from accelc.hls.engine.fixed import EngineUnsupported
from accelc.hls.engine.run import Engine

__all__ = ["Engine", "EngineUnsupported"]
