"""The units of work the flows and the CLI run, composed from the stages: poll feeds, process a
batch, one ingest cycle, backfills, re-extraction, maintenance and the run record."""
