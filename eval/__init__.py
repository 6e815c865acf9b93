"""Eval: coefficient sweeps, trait and nuisance metrics, A/B runs, reports."""
