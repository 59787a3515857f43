"""The architectures, one module per family; `kinds` is the table that names and builds them."""
