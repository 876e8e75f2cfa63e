"""Rendering results for people and programs: predictions in every format (predictions.py), evaluation and
bench tables (evaluation.py, bench.py), corpus, training, synth and checkpoint tables, and the offline HTML
report of a scan (html_report.py). Nothing here runs a model."""
