"""Checking an artifact against the float model: verify (fidelity) and the compile self-check."""
