"""Every swappable piece declared once: learners, mixers, global-information variants and env families.

Adding one is an entry here plus its yaml under conf/: the config Enums (`ptde.config.choices`), the
registries the code chooses from (`ptde.registry.choose`) and Hydra's schemas (`register_configs`)
are all derived from these tables. Entries are "module:attribute" strings, imported only when chosen
(an env adapter pulls in JAX or a game engine; learners import each other), so this module imports
nothing of ptde and every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LearnerPlugin:
    learner: str  # the stage-1 LightningModule
    schema: str  # its `algo` config dataclass: Hydra's schema/algo/<name>


@dataclass(frozen=True)
class EnvPlugin:
    adapter: str  # the MultiAgentEnv class: (cfg, batch_size=, seed=, auto_reset=[, split=])
    check: str  # start-up check of an env config (map names, an install, data files): before any run folder
    schema: str  # its `env` config dataclass: Hydra's schema/env/<family>
    splits: bool = False  # the data has a train and a held-out test split (the adapter takes `split`)


# `algo.learner`
LEARNERS = {
    "value_decomposition": LearnerPlugin(
        "ptde.learners.value_decomposition:ValueDecompositionLearner", "ptde.config.algos:ValueDecompositionConfig"
    ),
    "mappo": LearnerPlugin("ptde.learners.mappo:MAPPOLearner", "ptde.config.algos:MAPPOConfig"),
    "ctds": LearnerPlugin("ptde.learners.ctds:CTDSLearner", "ptde.config.algos:CTDSConfig"),
    "copa": LearnerPlugin("ptde.learners.copa:COPALearner", "ptde.config.algos:COPAConfig"),
    "csrl": LearnerPlugin("ptde.learners.csrl:CSRLLearner", "ptde.config.algos:CSRLConfig"),
}

# `algo.mixer` -> builder(algo, info) of the value-decomposition learner's mixer
MIXERS = {
    "vdn": "ptde.nn.mixers:vdn_mixer",
    "qmix": "ptde.nn.mixers:qmix_mixer",
    "qplex": "ptde.nn.mixers:qplex_mixer",
}

# `variant.name` -> builder(variant, info, input_dim) of the agents' global-information module
VARIANTS = {
    "none": "ptde.nn.global_info:no_global_info",
    "giu": "ptde.nn.global_info:giu_module",
    "gip": "ptde.nn.global_info:gip_module",
}

# `env.family`, and for SMAC `smac/<env.backend>` (both backends share the smac schema)
ENVS = {
    "smac/smax": EnvPlugin("ptde.envs.smax:SMAXEnv", "ptde.envs.smax:check_config", "ptde.envs.smac:SMACEnvConfig"),
    "smac/sc2": EnvPlugin("ptde.envs.sc2:SC2Env", "ptde.envs.sc2:check_config", "ptde.envs.smac:SMACEnvConfig"),
    "grf": EnvPlugin("ptde.envs.football:GRFEnv", "ptde.envs.football:check_config", "ptde.envs.football:GRFEnvConfig"),
    "ltr": EnvPlugin(
        "ptde.envs.ranking:RankingEnv", "ptde.envs.ranking:check_config", "ptde.envs.ranking:LTREnvConfig", splits=True
    ),
}


def smac_backends() -> list[str]:
    """`env.backend` of a SMAC env: the part after `smac/` of its ENVS keys."""
    return [key.split("/", 1)[1] for key in ENVS if key.startswith("smac/")]
