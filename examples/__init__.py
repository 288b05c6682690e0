"""Example models for accelc: definitions, generation scripts and the saved files."""
