"""Mover: copies volume data between volumes and buckets."""
