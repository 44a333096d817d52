"""Benchmark grids: presets of compression experiments, their cells, results and the HTML report."""
