"""The console layer: the four commands and what they share.

`app` finds the shipped configs and the run directory, `errors` is the one-line
error policy, `preflight` checks a Hydra command line before Hydra writes
anything; `pretrain`, `evaluate`, `report` and `export` are the commands. Nothing
below this layer imports from it.
"""
