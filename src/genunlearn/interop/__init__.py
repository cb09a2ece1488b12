"""Other libraries' formats genunlearn reads and writes (``diffusers``)."""
