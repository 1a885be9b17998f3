"""The visual check: a grid of X | Y | mask triplets."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from carremoval.synthesis.render import Pair

GAP = 4


def mask_image(mask: np.ndarray) -> np.ndarray:
    """HxW bool -> HxW uint8, 255 = hole."""
    return mask.astype(np.uint8) * 255


def triplet(pair: Pair) -> np.ndarray:
    """X | Y | mask side by side, with a thin white gap."""
    height = pair.input.shape[0]
    gap = np.full((height, GAP, 3), 255, np.uint8)
    mask = np.repeat(mask_image(pair.mask)[..., None], 3, axis=2)
    return np.hstack([pair.input, gap, pair.target, gap, mask])


def pair_grid(pairs: Sequence[Pair], columns: int = 2) -> np.ndarray:
    """Triplets laid out `columns` per row, white between them; empty cells stay white."""
    if not pairs:
        raise ValueError("no pairs to show")
    cells = [triplet(pair) for pair in pairs]
    cell_h, cell_w = cells[0].shape[:2]
    rows = -(-len(cells) // columns)
    grid = np.full((rows * (cell_h + 2 * GAP), columns * (cell_w + 4 * GAP), 3), 255, np.uint8)
    for number, cell in enumerate(cells):
        row, column = divmod(number, columns)
        top, left = row * (cell_h + 2 * GAP), column * (cell_w + 4 * GAP)
        grid[top : top + cell_h, left : left + cell_w] = cell
    return grid
