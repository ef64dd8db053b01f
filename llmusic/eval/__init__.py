"""Evaluation metrics (torchmetrics): classification reports with chance baselines, ranking metrics."""
