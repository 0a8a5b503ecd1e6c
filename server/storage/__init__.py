"""Persistence: database, tables, migrations, fact store, report store, findings, retention."""
