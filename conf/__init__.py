# The Hydra configs. This directory ships inside the wheel as the package `simclr.conf`
# (pyproject.toml maps it), so the console scripts find it with importlib.resources
# from an installed wheel as from this checkout.
