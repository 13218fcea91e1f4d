"""Typed schemas for every Hydra config group.

Each group option in `conf/` starts from one of these dataclasses (its defaults list names
`/schema/<group>/<kind>`), so a misspelt key or a value of the wrong type fails while Hydra
composes the config, before any run folder exists. Choice-valued fields are Enums: OmegaConf's
error then lists the valid names.

    choices   the Enums of choice-valued fields
    algos     the learners' schemas
    run       ptde.train's config and its env-independent groups (variant, logger, trainer)
    entries   evaluate, distill, sweep, report and campaign
    resolved  the composed config as the code reads it: plain dict, run label, cross-field checks

The env schemas live beside their envs (`ptde.envs.smac`, `.football`, `.ranking`).
"""

from ptde.config.algos import (
    COPAConfig,
    CSRLConfig,
    CTDSConfig,
    MAPPOConfig,
    ValueDecompositionConfig,
)
from ptde.config.choices import (
    BufferDtype,
    ChoiceEnum,
    Learner,
    LoggerKind,
    MixerKind,
    VariantKind,
    WandbMode,
)
from ptde.config.entries import (
    BenchmarkConfig,
    Budget,
    CampaignConfig,
    CampaignGroup,
    DistillEntryConfig,
    EvalMode,
    EvaluateConfig,
    GridConfig,
    GridGroup,
    ReportConfig,
    SweepConfig,
    TeacherZ,
    register_entry_configs,
)
from ptde.config.run import (
    Config,
    DistillConfig,
    LoggerConfig,
    TrainerConfig,
    VariantConfig,
    register_configs,
)

__all__ = [
    "ChoiceEnum",
    "Learner",
    "MixerKind",
    "VariantKind",
    "BufferDtype",
    "LoggerKind",
    "WandbMode",
    "ValueDecompositionConfig",
    "CTDSConfig",
    "COPAConfig",
    "CSRLConfig",
    "MAPPOConfig",
    "DistillConfig",
    "VariantConfig",
    "LoggerConfig",
    "TrainerConfig",
    "Config",
    "register_configs",
    "EvalMode",
    "EvaluateConfig",
    "TeacherZ",
    "Budget",
    "GridGroup",
    "GridConfig",
    "SweepConfig",
    "ReportConfig",
    "DistillEntryConfig",
    "CampaignGroup",
    "CampaignConfig",
    "BenchmarkConfig",
    "register_entry_configs",
]
