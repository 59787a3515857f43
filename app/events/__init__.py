"""The live side of the service: the event store (ratings, registered items, forgotten users),
its schema migrations, and the state each worker keeps from it."""
