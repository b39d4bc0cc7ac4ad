"""PyTorch model definitions (needed only to profile, train and run real models, never to simulate)."""
