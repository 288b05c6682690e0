"""Target-neutral passes: canonical/ (what every graph goes through) and compress/ (what a user asks for).

Target-specific rewrites live with their target (accelc.hls.legalize for fpga); the helpers every rewrite
uses are in accelc.transforms.rewrite. Importing this package imports no pass: the registry loads them.
"""
