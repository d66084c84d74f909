"""edgest's LiteRT target: convert with litert-torch to ``.tflite``, run with the LiteRT interpreter (XNNPACK)."""
