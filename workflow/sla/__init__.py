"""SLA deadlines: the policies an engine knows, firing what is due, and reading clocks."""
