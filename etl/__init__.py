"""newsetl: a scheduled news-ingestion ETL library.

One subpackage per stage, in data-flow order — ``fetch`` → ``parse`` → ``store`` → ``stories``
(→ ``warehouse``) — on two foundations every stage may use, ``config`` (settings, the sources
registry) and ``models`` (the types that cross stages). ``jobs`` composes the stages into the
units of work that ``flows/`` (Prefect) and ``cli`` (``newsetl``) run. A stage never imports a
later one (``tests/test_architecture.py``).
"""

__version__ = "0.1.0"
