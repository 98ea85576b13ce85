"""`python -m services.discovery` runs the service."""

from services.discovery.main import main

main()
