"""`python -m services.provisioner` runs the service."""

from services.provisioner.main import main

main()
