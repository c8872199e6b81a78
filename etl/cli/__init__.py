"""The ``newsetl`` command line."""

from etl.cli.main import app

__all__ = ["app"]
