"""The real-model zoo: networks as people write them, exported by the real tools (see zoo.py)."""
