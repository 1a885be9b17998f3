"""Temporal video car removal: streaming I/O, per-frame masks, flow-guided propagation, a fixed-camera
background model, and the metrics to judge it (see carremoval.video.temporal for the algorithm)."""
from carremoval.video.io import VideoInfo, VideoReader, VideoWriter, probe, read_frames
from carremoval.video.mask_sources import MaskSource, mask_from_file, mask_source, masks_from_dir, masks_from_function
from carremoval.video.remove import remove_video
from carremoval.video.temporal import Inpainter, RemovalStats, TemporalConfig, TemporalRemover, remove_frames

__all__ = [
    "Inpainter", "MaskSource", "RemovalStats", "TemporalConfig", "TemporalRemover", "VideoInfo", "VideoReader",
    "VideoWriter", "mask_from_file", "mask_source", "masks_from_dir", "masks_from_function", "probe", "read_frames", "remove_frames", "remove_video",
]
