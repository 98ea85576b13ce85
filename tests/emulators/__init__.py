"""Tests of the in-process emulators."""
