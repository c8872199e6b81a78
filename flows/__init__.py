"""Prefect flows: orchestration only. The work itself is in ``etl``."""
