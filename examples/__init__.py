"""The seed "Building Workflows", ported to Python: every code sample as a workflow.

Each module defines its workflows at import time with ``runtime.workflows.define`` (or the
``@workflows.workflow`` decorator), for the demo product ``acme``. ``python manage.py
sync_workflows --module examples`` publishes them (their components must exist in the
product; ``examples.components.components_ensure`` creates them for a local demo).
"""
