# Kept as a literal (not importlib.metadata) so `airlock --help` starts fast.
__version__ = "0.1.0"
