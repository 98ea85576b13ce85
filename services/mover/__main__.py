"""`python -m services.mover` runs the service."""

from services.mover.main import main

main()
