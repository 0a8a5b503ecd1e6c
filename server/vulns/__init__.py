"""Known vulnerabilities of installed packages, from the distributions' own feeds.

`feeds/` parses each feed format into advisories, `store` keeps them in a SQLite file
of their own (built whole and swapped in atomically), `matching` turns one host's
packages into the derived `vulnerabilities` domain the rules read at evaluation, and
`versions` holds the package managers' version orderings.
"""
