"""edgest-example-model: a model family plugin written only against edgest's public API."""
