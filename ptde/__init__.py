"""PTDE: Personalized Training with Distilled Execution (Hydra + Lightning)."""

from ptde.hydra_resolvers import register_resolvers

register_resolvers()  # the sweep folder names of conf/ need them in every process that runs a job
