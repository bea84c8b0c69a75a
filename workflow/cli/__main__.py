"""``python -m workflow.cli``: the ``casework`` command."""

from workflow.cli import main

main()
