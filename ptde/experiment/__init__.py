"""The experiment: its stages (stage 1, stage 2, the PRR evaluation), the trainer factory, resume,
preemption and the run folder's files. The entry points (`ptde.train`, `ptde.distill`,
`ptde.evaluate`, `ptde.sweep`) are thin shells over this package; importing it imports nothing
(`ptde.report` reads the PRR from here without Lightning)."""
