"""HTTP edge: parses, authorises and calls services; never holds business logic."""
