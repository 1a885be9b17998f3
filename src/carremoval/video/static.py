"""Fixed camera: a clean-background model, the per-pixel temporal median of the pixels seen without a car."""
from __future__ import annotations

import numpy as np

UNSEEN = np.iinfo(np.uint16).max


def camera_motion(pair_motions: list[float]) -> float:
    """The window's camera motion: median over frame pairs of their median background displacement (px,
    `flow.global_motion`)."""
    if not pair_motions:
        return float("inf")
    return float(np.median(pair_motions))


class BackgroundModel:
    """The clean background of a fixed camera, kept across windows while the camera stays fixed.

    values: HxWx3 uint8; seen: pixels with a value; real: pixels whose value comes from observations (the others
    were made up by the inpainter on a keyframe and are reused as they are, so they do not flicker).
    """

    def __init__(self) -> None:
        self.values: np.ndarray | None = None
        self.seen: np.ndarray | None = None
        self.real: np.ndarray | None = None

    def reset(self) -> None:
        self.values = self.seen = self.real = None

    def update(self, colours: list[np.ndarray], known: list[np.ndarray], real: list[np.ndarray],
               region: np.ndarray) -> None:
        """Set the model inside `region` to the median of the window's known observations of each pixel.

        Pixels with no observation in the window keep their previous value. A pixel is `real` when most of its
        observations are.
        """
        if self.values is None or self.values.shape != colours[0].shape:
            self.values = np.zeros_like(colours[0])
            self.seen = np.zeros(colours[0].shape[:2], bool)
            self.real = np.zeros(colours[0].shape[:2], bool)
        ys, xs = np.nonzero(region)
        if len(ys) == 0:
            return
        observed = np.stack([mask[ys, xs] for mask in known])            # T x P
        samples = np.stack([image[ys, xs] for image in colours]).astype(np.uint16)  # T x P x 3
        samples[~observed] = UNSEEN
        samples.sort(axis=0)
        counts = observed.sum(axis=0)
        median_row = np.maximum(counts - 1, 0) // 2
        median = np.take_along_axis(samples, median_row[None, :, None], axis=0)[0]
        has = counts > 0
        real_votes = np.stack([mask[ys, xs] for mask in real]) & observed
        self.values[ys[has], xs[has]] = median[has].astype(np.uint8)
        self.seen[ys[has], xs[has]] = True
        self.real[ys[has], xs[has]] = 2 * real_votes.sum(axis=0)[has] > counts[has]

    def add_made_up(self, image: np.ndarray, where: np.ndarray) -> None:
        """Store inpainted background for pixels no frame showed."""
        self.values[where] = image[where]
        self.seen[where] = True
        self.real[where] = False
