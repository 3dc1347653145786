"""Load generators, benchmarks and the harnesses the reliability tests drive as processes."""
