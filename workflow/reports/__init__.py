"""Reports for people: the case page, the business figures and their charts (the
``reports`` extra draws the charts)."""
