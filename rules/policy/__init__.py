"""What a collector judges by: packs + waivers + scopes + frameworks, and the score."""
