"""The `posekit` command line; every command mirrors a function of the Python API."""
