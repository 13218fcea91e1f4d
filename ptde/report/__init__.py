"""`python -m ptde.report`: the paper's tables and figures from a folder of runs or a wandb project.

runs (load run folders / offline wandb runs / a wandb project) -> tables (mean ± std, KD, PRR) ->
plots (learning curves, distillation) -> aggregate (IQM, bootstrap CIs) -> build (report folder).
"""
