"""`python -m services.protection` runs the service."""

from services.protection.main import main

main()
