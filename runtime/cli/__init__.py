"""The ``trellis`` command line: workflows as files (export, push, validate, test) and runs
(start and follow, list, logs, signal, cancel) against a Trellis server's REST API.

Layers (pyproject.toml, [tool.importlinter]): the REST client, the file format, the diff,
the live follower and ``validate`` are core (no Django: they run on a laptop or a CI box
with only the package installed); ``test`` runs workflows in process with
:mod:`runtime.testing`, which needs Django's settings, so it and the app wiring that imports
it (:mod:`runtime.cli.main`) are on the Django side.
"""
