"""Exporters of runs and experiments to the trackers researchers already use (MLflow). They read run logs only."""
