"""Partners of the after-sales work: their registry, the jobs dispatched to them, and
their quarterly rating from the history."""
