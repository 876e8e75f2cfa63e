"""The training corpus: public repositories pinned by commit (manifest.py, sources.toml), their local copies
(sources.py), the build that cuts grids and drops duplicates (build.py, grids.py, dedup.py), its data card
(card.py) and the check of how well format and size alone tell the classes apart in training views
(view_bias.py)."""
