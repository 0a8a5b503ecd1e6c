"""Feed parsers: one module per format, `detect` picks by content, never by name.

Every parser validates the whole file before anything is stored; a truncated or
malformed file raises `VulnDbError` naming the file and the first problem.
"""
