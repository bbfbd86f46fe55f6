"""The training engine: one trainer for every task (see docs/training.md).

run.py          one run from a recipe: run directory, seeding, data, resume, artefacts
trainer.py      the loop: steps, validation, early stopping, NaN handling, TBPTT
options.py      the ``train:`` section, typed and validated
optim.py        AdamW, warm-up + cosine / reduce-on-plateau, L1
checkpoint.py   atomic, rotated, weights_only checkpoints with RNG states
distributed.py  torchrun / DistributedDataParallel setup
evaluation.py   scoring on held-out data (shared with ``seqpipe evaluate``)
metrics_log.py  metrics.jsonl + TensorBoard;  curves.py  learning-curve PNG
progress.py     rich progress bar;            sweep.py   grid / Optuna search
"""
