"""``python -m casework.workflow.cli``: the ``casework`` command."""

from casework.workflow.cli import main

main()
