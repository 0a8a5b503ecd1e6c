"""The rule language: located YAML, parsing, the typed model, operators, templates, versions."""
