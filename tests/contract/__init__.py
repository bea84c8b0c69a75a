"""The storage port's contract suite, run on every database casework supports."""
