"""Few-label evaluation of a frozen encoder: probes, baselines, report, figures.

`evaluate_encoder` is what `simclr-pretrain` calls after training and what
`simclr-eval` calls on a checkpoint; the modules below do one job each.
"""

from simclr.evaluation.pipeline import evaluate_encoder, headline_metric

__all__ = ["evaluate_encoder", "headline_metric"]
