"""Training: the one loop (`loop.fit`), its objectives, data and distributed plumbing."""
