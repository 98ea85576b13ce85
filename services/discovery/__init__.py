"""Discovery: watch-based inventory of clusters, grouped into applications."""
