"""Protection: app backups and restores, orchestrated over the bus."""
