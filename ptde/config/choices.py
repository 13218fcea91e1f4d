"""The closed sets a config field chooses from. As Enums, OmegaConf's error on a wrong value lists
the valid names; those of the plugins (learners, mixers, variants) come from `ptde.plugins`."""

from __future__ import annotations

from ptde import plugins
from ptde.registry import ChoiceEnum, choice_enum

# derived from ptde.plugins: adding a learner, mixer or variant there adds its name here
Learner = choice_enum("Learner", plugins.LEARNERS, __name__)
MixerKind = choice_enum("MixerKind", plugins.MIXERS, __name__)
VariantKind = choice_enum("VariantKind", plugins.VARIANTS, __name__)


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
