"""Stage 3, features: the L2-normalised encoder outputs of every run a profile analyses, extracted once
per run and epoch and kept next to the run (see :mod:`clorg.features.extract`)."""

from .extract import Features, find, label, profile_features, profile_runs, run_features

__all__ = ["Features", "find", "label", "profile_features", "profile_runs", "run_features"]
