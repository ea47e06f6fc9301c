"""Code that runs inside the helper image: standard library only."""
