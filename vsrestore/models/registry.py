"""The registry of architectures vsrestore can build and load.

Each entry says how to build a network from a config, which state-dict keys identify it, and how to
read a config back from a bare state dict (the authors' checkpoints carry no config).
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from ..networks.msitf import MSITF, MSITFConfig
from ..networks.mstfn import MSTFN, MSTFNConfig
from ..networks.stifn import STIFN, STIFN_PRESETS, STIFNConfig

StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class Arch:
    """How to build, recognise and configure one architecture."""

    name: str
    network: Callable[[Any], nn.Module]
    config_type: type
    signature: tuple[str, ...]
    infer_config: Callable[[StateDict], Any]
    presets: Mapping[str, Any] = field(default_factory=dict)
    # Keys a checkpoint may carry that the network recomputes (dropped before a strict load).
    derived_keys: Callable[[str], bool] = lambda key: False

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        """Build this arch's config from plain values (e.g. JSON metadata); lists become tuples."""
        names = {f.name for f in dataclasses.fields(self.config_type)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"{self.name} config has no field(s) {sorted(unknown)}; allowed: {sorted(names)}")
        return self.config_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def build(self, config: Any = None) -> nn.Module:
        if isinstance(config, str):
            if config not in self.presets:
                raise ValueError(f"{self.name} has no preset {config!r}; presets: {sorted(self.presets)}")
            config = self.presets[config]
        elif isinstance(config, Mapping):
            config = self.config_from_dict(config)
        return self.network(config)


def _count(keys: StateDict, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := regex.match(k))})


def _infer_mstfn(sd: StateDict) -> MSTFNConfig:
    num_tail = _count(sd, r"convtail(\d+)\.") - 1
    return MSTFNConfig(
        features=int(sd["stage1.conv1.conv.0.weight"].shape[0]),
        num_rpb=_count(sd, r"stage1\.rpb(\d+)\."),
        num_tail=num_tail,
        # Dilations are not stored in weights: 1x1 branches are rate 1, the rest follow the authors'.
        aspp_rates=tuple(
            1 if sd[f"stage1.aspp.aspp{i}.atrous_convolution.weight"].shape[-1] == 1 else 2 ** (i - 1)
            for i in range(1, _count(sd, r"stage1\.aspp\.aspp(\d+)\.") + 1)
        ),
    )


def _infer_stifn(sd: StateDict) -> STIFNConfig:
    features_3d = int(sd["stem.weight"].shape[0])
    return STIFNConfig(
        frames=int(sd["fusion.weight"].shape[1]) // features_3d,
        features_3d=features_3d,
        num_res3d=_count(sd, r"body\.(\d+)\."),
        features_fused=int(sd["fusion.weight"].shape[0]),
        features_qe=int(sd["qe_in.weight"].shape[0]),
        num_qe_mid=_count(sd, r"qe_mid\.(\d+)\."),
    )


def _infer_msitf(sd: StateDict) -> MSITFConfig:
    features = int(sd["conv_first.weight"].shape[0])
    block = "recon_trunk.layers.0.residual_group.blocks.0."
    table = sd.get(block + "attn.relative_coords_table")
    mask = sd.get(block.replace("blocks.0", "blocks.1") + "attn_mask")
    defaults = MSITFConfig()
    return MSITFConfig(
        features=features,
        deform_groups=int(sd["pcd_align.L3_dcnpack_1.conv_offset.weight"].shape[0]) // 27,
        front_blocks=_count(sd, r"feature_extraction\.(\d+)\."),
        trunk_layers=_count(sd, r"recon_trunk\.layers\.(\d+)\."),
        trunk_blocks=_count(sd, r"recon_trunk\.layers\.0\.residual_group\.blocks\.(\d+)\."),
        trunk_heads=int(sd[block + "attn.cpb_mlp.2.weight"].shape[0]),
        window_size=(int(table.shape[1]) + 1) // 2 if table is not None else defaults.window_size,
        mlp_ratio=float(sd[block + "mlp.fc1.weight"].shape[0]) / features,
        cpb_hidden=int(sd[block + "attn.cpb_mlp.0.weight"].shape[0]),
        # Not stored in any weight: the authors' value (or the run's config metadata) applies.
        temporal_heads=defaults.temporal_heads,
        mask_resolution=(
            int(math.isqrt(mask.shape[0] * mask.shape[1])) if mask is not None else defaults.mask_resolution
        ),
    )


_MSITF_COMPUTED = ("relative_coords_table", "relative_position_index", "attn_mask")

ARCHS: dict[str, Arch] = {}


def register(arch: Arch) -> Arch:
    """Add an architecture to the registry (names are unique)."""
    if arch.name in ARCHS:
        raise ValueError(f"architecture {arch.name!r} is registered already")
    ARCHS[arch.name] = arch
    return arch


register(
    Arch(
        name="mstfn",
        network=MSTFN,
        config_type=MSTFNConfig,
        signature=("stage1.conv1.conv.0.weight", "stage2.conv1.conv.0.weight", "convtail1.conv.0.weight"),
        infer_config=_infer_mstfn,
        presets={"authors": MSTFNConfig()},
    )
)
register(
    Arch(
        name="stifn",
        network=STIFN,
        config_type=STIFNConfig,
        signature=("stem.weight", "fusion.weight", "qe_out.weight"),
        infer_config=_infer_stifn,
        presets=STIFN_PRESETS,
    )
)


register(
    Arch(
        name="msitf",
        network=MSITF,
        config_type=MSITFConfig,
        signature=("conv_first.weight", "pcd_align.L1_dcnpack_1.conv_offset.weight", "recon_trunk.conv_first.weight"),
        infer_config=_infer_msitf,
        presets={"authors": MSITFConfig()},
        derived_keys=lambda key: key.rsplit(".", 1)[-1] in _MSITF_COMPUTED,
    )
)


def get_arch(name: str) -> Arch:
    """The registered architecture called ``name``."""
    try:
        return ARCHS[name.lower()]
    except KeyError:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, not {name!r}") from None


def detect_arch(state_dict: StateDict) -> Arch:
    """Recognise the architecture of a state dict by its keys."""
    for arch in ARCHS.values():
        if all(k in state_dict for k in arch.signature):
            return arch
    sample = ", ".join(list(state_dict)[:5])
    raise ValueError(
        f"cannot recognise the architecture from the checkpoint's keys (first: {sample}); "
        f"pass arch= one of {sorted(ARCHS)}"
    )
