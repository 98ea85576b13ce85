"""Keys and authenticated encryption for everything Vessel writes into a bucket."""
