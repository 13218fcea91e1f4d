"""Command-line tools around the library (campaigns, benchmarks); the library never imports them."""
