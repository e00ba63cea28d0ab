"""Small helpers shared by every procedure: errors, atomic files, progress, run logs."""
