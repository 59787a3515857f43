"""Loading exported versions, swapping them without downtime, and the /predict batcher."""
