"""Ratings data: the data sets (`datasets`), the file forms and their readers (`formats`), the
frames and their checks (`ratings`), loading (`loaders`), fetching, splits and synthetic data."""
