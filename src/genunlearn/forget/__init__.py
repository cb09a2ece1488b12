"""What to forget: requests and their parser (``request``), energies over samples (``energy``)."""
