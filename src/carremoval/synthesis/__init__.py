"""Training-pair synthesis: cars pasted onto backgrounds (X), the clean backgrounds (Y) and the hole masks."""
from carremoval.synthesis.render import Pair, PairRenderer

__all__ = ["Pair", "PairRenderer"]
