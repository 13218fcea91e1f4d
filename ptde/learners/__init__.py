"""LightningModules: stage-1 learners and the stage-2 distillation."""
