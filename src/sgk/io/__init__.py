"""Reading and writing sparse-matrix files (DLMC ``.smtx``)."""
from .smtx import load_smtx, read_smtx_topology, save_smtx

__all__ = ["load_smtx", "read_smtx_topology", "save_smtx"]
