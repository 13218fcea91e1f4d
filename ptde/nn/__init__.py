"""Network building blocks; no training logic lives here."""
