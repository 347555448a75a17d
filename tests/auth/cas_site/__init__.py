"""A Django project running django-cas-server, the real CAS 3.0 server OneWindow's CAS tests log in at.

``python -m tests.auth.cas_site.serve PORT SERVICE`` (from the repository root) creates its SQLite database at
``$ONEWINDOW_CAS_DB``, registers ``SERVICE`` with the attributes it may receive, and serves ``/cas/`` on
127.0.0.1:PORT. The people who can log in are in :mod:`tests.auth.cas_site.directory`.
"""
