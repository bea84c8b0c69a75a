"""SLA deadlines: firing what is due, reading clocks, replanning and what-if."""
