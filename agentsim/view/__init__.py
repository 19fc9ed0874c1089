"""The browser viewer (`agentsim view RUN_OR_EXPERIMENT_DIR`): pages served from Python by HoloViz Panel.

It sits above the runtime: it reads run logs only (DuckDB over the Parquet parts of one consistent snapshot,
agentsim.logs.reader.RunLog) and never imports the runtime's code. Nothing below it imports it.

- `data`: what the pages read, as small DataFrames (`RunData`); every query is aggregated or capped in DuckDB.
- `panels`: the panels every run has (status, per-step counts, step scrubber, agent timelines).
- `registry`: the family views (`Family.view`, a "module:function" ref each family registers).
- `server`: `serve()`, the page and its live refresh.
- `seat`: a page per human seat (`backend: human`), served by `agentsim run` while a person plays.

Importing this package imports no Panel; `server` and `panels` do.
"""
