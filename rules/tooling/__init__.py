"""Policy tooling for authors: validate, lint, test, explain, and the `rules` CLI group."""
