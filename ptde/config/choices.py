"""The closed sets a config field chooses from. As Enums, OmegaConf's error on a wrong value lists
the valid names."""

from __future__ import annotations

from enum import Enum


class ChoiceEnum(str, Enum):
    """An Enum whose str() is its value, so `${variant.name}` interpolates as `gip`."""

    def __str__(self) -> str:
        return self.value


class Learner(ChoiceEnum):
    value_decomposition = "value_decomposition"
    ctds = "ctds"
    copa = "copa"
    csrl = "csrl"
    mappo = "mappo"


class MixerKind(ChoiceEnum):
    vdn = "vdn"
    qmix = "qmix"
    qplex = "qplex"


class VariantKind(ChoiceEnum):
    none = "none"
    giu = "giu"
    gip = "gip"


class BufferDtype(ChoiceEnum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class LoggerKind(ChoiceEnum):
    wandb = "wandb"
    csv = "csv"
    none = "none"


class WandbMode(ChoiceEnum):
    auto = "auto"  # online when an API key is configured, else offline
    offline = "offline"
    online = "online"


# trainer.precision, in Lightning's names (a str field, since Enum names cannot hold "-")
PRECISIONS = ("32-true", "bf16-mixed")
