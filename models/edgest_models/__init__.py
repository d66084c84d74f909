"""edgest's model zoo. Each family lives in its own module; :mod:`edgest_models.plugin` registers them."""
