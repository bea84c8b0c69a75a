"""One case at a time: checking input, deciding a transition, rebuilding a case from its
events, and finding the installed machines."""
