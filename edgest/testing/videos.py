"""Video files for tests: encode synthetic clips with PyAV so readers are tested on real containers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgest.data.synthetic import MEAN, STD


def write_video(path: Path, clip: np.ndarray, rate: int = 8) -> Path:
    """Encode a normalised ``(3, T, H, W)`` clip as an MPEG-4 video (near-lossless quantiser); returns ``path``."""
    import av

    rgb = np.clip((clip * STD + MEAN) * 255, 0, 255).round().astype(np.uint8).transpose(1, 2, 3, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate, options={"qscale": "1"})
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], "yuv420p"
        for frame in rgb:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
