"""newsetl: a scheduled news-ingestion ETL library.

Each module is one stage or one shared concern; stages take plain data in and give plain data
out, so the Prefect flows in ``flows/`` stay thin and everything here is testable without them.
Order of the stages: config → http → feeds → extract → normalize → store.
"""

__version__ = "0.1.0"
