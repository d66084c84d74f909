"""The zoo's variant configs, in one place that imports no torch.

Each registered model's ``ModelSpec.config`` is its entry here, whole, and its factory is called
with it; the family modules re-export their part as ``CONFIGS``. So the registry, the model code
and ``--model-option`` cannot disagree: every key is an option, typed by its value here
(``num_frames=8``, ``depths=3,3,13,3``; :mod:`edgest.model_options`).

Where a paper has widths and depths, they are here under the family's own names (SqueezeTime
``layers``/``planes``, EMOv2 ``depths``/``dims``, ViViT ``depth``/``embed_dim``, LMUFormer
``dim``/``depth``). Classes follow the dataset: Kinetics-400 heads by default, ``num_classes=600``
for Kinetics-600 and ``51`` for HMDB51 (SqueezeTime's official fine-tunes).
"""

from __future__ import annotations

from typing import Any

Config = dict[str, Any]

SQUEEZETIME: dict[str, Config] = {
    # official configs/recognition/SqueezeTime/SqueezeTime_K400.py: depth 50, pos_dim [56, 28, 14, 7], 16x224x224
    "squeezetime": dict(num_classes=400, num_frames=16, image_size=224, layers=(3, 4, 6, 3),
                        planes=(64, 128, 256, 512), pos_dims=(56, 28, 14, 7), stem_width=64),
    "squeezetime_tiny": dict(
        num_classes=10, num_frames=8, image_size=64, layers=(1, 1, 1, 1), planes=(8, 16, 32, 64),
        pos_dims=(16, 8, 4, 2),  # feature sizes at 64x64 input (stride 4, 8, 16, 32)
        stem_width=16,
    ),
}

# official model/lib_emo/emo2.py, EMO2_{1,2,5,20}M_k5_hybrid (224x224, window 7)
_EMO_1M = dict(depths=(2, 2, 8, 3), dims=(32, 48, 80, 180), exp_ratios=(2.0, 2.5, 3.0, 3.5), dim_heads=(16, 16, 20, 20))
_EMO_2M = dict(depths=(3, 3, 9, 3), dims=(32, 48, 120, 200), exp_ratios=(2.0, 2.5, 3.0, 3.5), dim_heads=(16, 16, 20, 20))
_EMO_5M = dict(depths=(3, 3, 9, 3), dims=(48, 72, 160, 288), exp_ratios=(2.0, 3.0, 4.0, 4.0), dim_heads=(16, 24, 32, 32))
_EMO_20M = dict(depths=(3, 3, 13, 3), dims=(64, 128, 320, 448), exp_ratios=(2.0, 3.0, 4.0, 4.0), dim_heads=(16, 32, 32, 32))
_EMO_IMAGE = dict(num_classes=1000, image_size=224, window_size=7)
_EMO_VIDEO = dict(num_classes=400, num_frames=8, image_size=224, window_size=7)

EMOV2: dict[str, Config] = {
    "emov2_1m": {**_EMO_IMAGE, **_EMO_1M},
    "emov2_2m": {**_EMO_IMAGE, **_EMO_2M},
    "emov2_5m": {**_EMO_IMAGE, **_EMO_5M},
    "emov2_20m": {**_EMO_IMAGE, **_EMO_20M},
    "emov2_1m_video": {**_EMO_VIDEO, **_EMO_1M},
    "emov2_2m_video": {**_EMO_VIDEO, **_EMO_2M},
    "emov2_5m_video": {**_EMO_VIDEO, **_EMO_5M},
    "emov2_20m_video": {**_EMO_VIDEO, **_EMO_20M},
    # Feature maps at 64x64: 32 (stem), 16, 8, 4, 2. Window 3 pads stage 3 (4x4 -> 6x6, 2x2
    # windows, so local and spanning attention differ) and stage 4 (2x2 -> 3x3, one window).
    "emov2_tiny_video": dict(
        num_classes=10, num_frames=4, image_size=64, depths=(1, 1, 2, 2), dims=(16, 24, 32, 48),
        exp_ratios=(2.0, 2.0, 2.0, 2.0), dim_heads=(8, 8, 16, 16), window_size=3,
    ),
}

LMUFORMER: dict[str, Config] = {
    "lmuformer": dict(num_classes=35, seq_len=128, in_features=128, dim=256, depth=1, spiking=False),
    "lmuformer_spiking": dict(num_classes=35, seq_len=128, in_features=128, dim=256, depth=1, spiking=True),
    "lmuformer_tiny": dict(num_classes=10, seq_len=16, in_features=16, dim=32, depth=1, spiking=False),
    "lmuformer_spiking_tiny": dict(num_classes=10, seq_len=8, in_features=16, dim=32, depth=1, spiking=True),
    "lmuformer_video": dict(num_classes=400, num_frames=16, image_size=112, stem_widths=(32, 64, 128, 256, 256),
                            stem_grid=2, depth=1),
    "lmuformer_video_tiny": dict(num_classes=10, num_frames=8, image_size=64, stem_widths=(8, 16, 32), stem_grid=4,
                                 depth=1),
}

_VIVIT_B = dict(num_frames=32, image_size=224, patch_size=16, tubelet=2, embed_dim=768, depth=12, temporal_depth=4,
                num_heads=12)
_VIVIT_S = dict(num_frames=16, image_size=224, patch_size=16, tubelet=2, embed_dim=384, depth=12, temporal_depth=4,
                num_heads=6)
_VIVIT_TI = dict(num_frames=16, image_size=224, patch_size=16, tubelet=2, embed_dim=192, depth=12, temporal_depth=2,
                 num_heads=3)
# 8x8 patches and mimetic init: the tiny models must learn the synthetic set in CPU minutes (see vivit.py)
_VIVIT_TINY = dict(num_frames=8, image_size=64, patch_size=8, tubelet=2, embed_dim=64, depth=2, temporal_depth=1,
                   num_heads=4, adapter_heads=2, mimetic_init=True)

VIVIT: dict[str, Config] = {
    "vivit_fe_b": dict(num_classes=400, **_VIVIT_B, adapter=False),
    "vivit_fa_b": dict(num_classes=400, **_VIVIT_B, adapter=True),
    "vivit_fe_s": dict(num_classes=400, **_VIVIT_S, adapter=False),
    "vivit_fa_s": dict(num_classes=400, **_VIVIT_S, adapter=True),
    "vivit_fe_ti": dict(num_classes=400, **_VIVIT_TI, adapter=False),
    "vivit_fa_ti": dict(num_classes=400, **_VIVIT_TI, adapter=True),
    "vivit_fe_tiny": dict(num_classes=10, **_VIVIT_TINY, adapter=False),
    "vivit_fa_tiny": dict(num_classes=10, **_VIVIT_TINY, adapter=True),
}

#: family -> its variants' configs
FAMILIES: dict[str, dict[str, Config]] = {"squeezetime": SQUEEZETIME, "emov2": EMOV2, "lmuformer": LMUFORMER,
                                          "vivit": VIVIT}
