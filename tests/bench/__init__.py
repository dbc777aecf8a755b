"""The benchmarks and the load test: a dev-only Django app, installed by tests.settings only.

``manage.py bench``, ``manage.py loadtest`` and ``manage.py bench_compile`` exist when
``DJANGO_SETTINGS_MODULE=tests.settings`` (``make bench``, ``make loadtest``); production
settings (designer.settings) do not install this app, so none of it ships in the product.
"""
