"""`python -m services.gateway` runs the service."""

from services.gateway.main import main

main()
