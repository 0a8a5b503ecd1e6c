"""Audit documents (HTML, PDF, CSV, XLSX, JSON) rendered from `server.read.audit`.

The renderers read the audit model only; they never query the database. Every
format goes through `render.render_audit`.
"""
