"""Provisioner: turns claims of Vessel StorageClasses into volumes on local backends."""
