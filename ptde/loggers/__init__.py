"""Run loggers: the CSV file always, Weights & Biases when asked (offline unless logged in).

All metrics are logged against env steps (the paper's x axis), through one function, so CSV and
wandb rows agree and wandb never sees a step go backwards. A resumed run continues both: the CSV
keeps its rows up to the checkpoint's env step (rows a killed run wrote after it are dropped, so
no step appears twice) and wandb continues the same run id.

One wandb run holds both PTDE stages of a run folder: stage 2 logs its distillation curves
against `distill/step` (wandb's own step keeps counting up), the teacher-data size and the
centralized/decentralized evaluation into the same run, and the run's summary ends as the
folder's results.json. The run's `group` is its config without the seed (one group is one table
cell), its `job_type` the stages it holds, its tags the algorithm, env and variant.

`csv_metrics` (metrics.csv), `wandb_run` (the wandb run's group, job type, tags and mode) and
`run_logger` (the fan-out every stage logs through).
"""
