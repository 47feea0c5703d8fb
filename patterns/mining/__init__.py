"""Role-mining engine: minimum exact covers of user-permission matrices (feature P2).

Pure Python, no Django imports, so tasks, commands and benchmarks can all call it.
"""

from .engine import MiningError, MiningResult, Role, mine_roles, verify_cover
from .io import UpaFormatError, read_upa, roles_to_json, write_roles

__all__ = [
    "MiningError",
    "MiningResult",
    "Role",
    "UpaFormatError",
    "mine_roles",
    "read_upa",
    "roles_to_json",
    "verify_cover",
    "write_roles",
]
