"""Video data: dataset readers, clip sampling and synthetic clips, clip augmentations, result writer.

See :mod:`reusegate.data.readers`, :mod:`reusegate.data.clips`, :mod:`reusegate.data.transforms` and
:mod:`reusegate.data.writer`. Importing this package does not import the transforms (they need mmcv).
"""
from reusegate.data.clips import ClipSampler, SyntheticClipGenerator
from reusegate.data.readers import DavisReader, VideoSequence, YouTubeVOSReader, open_sequence, read_image, read_mask
from reusegate.data.writer import write_palette_png

__all__ = ["DavisReader", "YouTubeVOSReader", "VideoSequence", "open_sequence", "read_image", "read_mask",
           "write_palette_png", "ClipSampler", "SyntheticClipGenerator"]
