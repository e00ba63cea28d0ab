"""What reproduce runs: its presets and rows (presets), its stage cache (stages), its table (tables)."""
