"""Offline demo news sites for newsetl.

``etl.demo.server.DemoSites`` serves three fictional-but-realistic outlets (France 24
and Voice of America look-alikes, and a small aggregator, Hemisphere Wire) on loopback
addresses with RSS/Atom feeds and cluttered article pages, so that the whole pipeline
can be exercised end to end without network access. Article texts live in
``content/``, page and feed markup in ``templates/``. ``python -m etl.demo.server``
serves them until Ctrl-C; ``python -m etl.demo._selfcheck`` verifies them.
"""
